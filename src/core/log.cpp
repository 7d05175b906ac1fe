#include "cseg/core/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

#include "cseg/core/error.h"

namespace cseg::log {

namespace {
std::atomic<int> threshold{int(Level::info)};
std::mutex mutex;
std::FILE* file = nullptr;  // guarded by mutex
}  // namespace

void set_level(Level level) { threshold = int(level); }

bool enabled(Level level) { return int(level) >= threshold.load(); }

void set_file(const std::string& path) {
  std::lock_guard<std::mutex> lock(mutex);
  if (file) std::fclose(file);
  file = nullptr;
  if (path.empty()) return;
  file = std::fopen(path.c_str(), "a");
  CSEG_CHECK(file, "cannot open the log file '{}' for appending", path);
}

void write(Level level, const std::string& line) {
  const std::string text = level == Level::warn ? "warning: " + line : line;
  std::lock_guard<std::mutex> lock(mutex);
  std::fprintf(stdout, "%s\n", text.c_str());
  std::fflush(stdout);
  if (file) {
    const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm tm{};
    localtime_r(&now, &tm);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);
    std::fprintf(file, "[%s] %s\n", stamp, text.c_str());
    std::fflush(file);
  }
}

}  // namespace cseg::log
