#pragma once
/// cseg's log: formatted lines to the console and, once logging::setup_logging names one, the
/// run's log file (with a timestamp). Thread-safe. It is built on fmt alone, so that one fmt
/// serves a build: Debian's with LibTorch 1.13, LibTorch's own bundled one with LibTorch 2.x
/// (spdlog, which cseg used before, is built for one fmt version and breaks with the other).
#include <fmt/format.h>

#include <string>
#include <utility>

namespace cseg::log {

enum class Level { info = 0, warn = 1, off = 2 };

/// Lines below `level` are dropped (the other ranks of a data-parallel run keep warnings only).
void set_level(Level level);
bool enabled(Level level);
/// Also write every line to `path` (appended), "" to stop; throws naming the file if it cannot
/// be opened.
void set_file(const std::string& path);
/// One line, as given (warnings get a "warning: " prefix).
void write(Level level, const std::string& line);

template <typename... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::info)) write(Level::info, fmt::format(f, std::forward<Args>(args)...));
}

template <typename... Args>
void warn(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::warn)) write(Level::warn, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace cseg::log
