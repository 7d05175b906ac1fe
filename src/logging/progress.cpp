#include "cseg/logging/progress.h"

#include <unistd.h>

#include <cstdio>

#include "cseg/core/log.h"

namespace cseg::logging {

void setup_logging(const std::string& log_file) { log::set_file(log_file); }

namespace {
std::string clock_text(double seconds) {
  int s = static_cast<int>(seconds + 0.5);
  return fmt::format("{}:{:02d}:{:02d}", s / 3600, (s / 60) % 60, s % 60);
}
}  // namespace

Progress::Progress(std::string label, int64_t total, int log_every)
    : label_(std::move(label)),
      total_(total),
      log_every_(std::max(1, log_every)),
      // No bar when info lines are off (the other ranks of a data-parallel run).
      tty_(isatty(fileno(stdout)) && log::enabled(log::Level::info)) {
  start_ = last_draw_ = std::chrono::steady_clock::now();
}

void Progress::update(int64_t done, const std::string& suffix) {
  auto now = std::chrono::steady_clock::now();
  if (start_done_ < 0) {
    start_done_ = done - 1;  // rate counts from the first update (a resumed run starts late)
    start_ = now;
  }
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double rate = elapsed > 0 ? (done - start_done_) / elapsed : 0;
  const double eta = rate > 0 ? (total_ - done) / rate : 0;
  if (tty_) {
    if (std::chrono::duration<double>(now - last_draw_).count() < 0.2 && done < total_) return;
    last_draw_ = now;
    const int width = 24;
    int filled = total_ > 0 ? static_cast<int>(width * done / total_) : 0;
    std::string bar(filled, '#');
    bar.resize(width, '.');
    std::printf("\r%s [%s] %ld/%ld %.1f it/s ETA %s %s\033[K", label_.c_str(), bar.c_str(), static_cast<long>(done),
                static_cast<long>(total_), rate, clock_text(eta).c_str(), suffix.c_str());
    std::fflush(stdout);
  } else if (done - last_logged_ >= log_every_ || done == total_) {
    last_logged_ = done;
    log::info("{} {}/{} {:.1f} it/s ETA {} {}", label_, done, total_, rate, clock_text(eta), suffix);
  }
}

void Progress::finish(const std::string& suffix) {
  if (tty_) {
    std::printf("\n");
    std::fflush(stdout);
  }
  if (!suffix.empty()) log::info("{} done: {}", label_, suffix);
}

}  // namespace cseg::logging
