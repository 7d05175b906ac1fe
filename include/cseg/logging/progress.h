#pragma once
/// Console output: a progress bar with rate and ETA on a terminal, plain periodic log lines
/// otherwise (CI logs, files). Lines go through core/log.h; setup_logging adds the run's log.txt.
#include <chrono>
#include <cstdint>
#include <string>

namespace cseg::logging {

/// The console, plus `log_file` when non-empty (appended).
void setup_logging(const std::string& log_file);

class Progress {
 public:
  Progress(std::string label, int64_t total, int log_every);
  /// `done` units finished; `suffix` is shown after the rate (e.g. the loss).
  void update(int64_t done, const std::string& suffix = "");
  void finish(const std::string& suffix = "");

 private:
  std::string label_;
  int64_t total_;
  int log_every_;
  bool tty_;
  int64_t start_done_ = -1, last_logged_ = 0;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace cseg::logging
