#pragma once
/// Wall time for logs and timings: the steady clock (never jumps with the system time).
#include <chrono>

namespace cseg::core {

using Clock = std::chrono::steady_clock;

/// Seconds from `start` to now.
inline double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace cseg::core
