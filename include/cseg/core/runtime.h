#pragma once
/// Process-wide runtime set-up: thread count, allocator tuning, seeding.
#include <cstdint>

namespace cseg::core {

struct RuntimeOptions {
  int threads = 0;          ///< intra-op threads; 0 = all cores (LibTorch defaults to 1 here)
  bool tune_malloc = true;  ///< keep large blocks mapped instead of returning them every step
};

/// Applies RuntimeOptions once at start-up. Why: LibTorch starts with one thread on this machine
/// class, and glibc returns large tensors to the OS each iteration (up to 1.8x slower).
void configure_runtime(const RuntimeOptions& options);

/// The process's peak resident set size so far, in MB (getrusage's ru_maxrss).
double peak_rss_mb();

/// Seeds torch's global generator (dropout, init). Data order and augmentation use their own
/// generators derived from the experiment seed, so they do not depend on this call.
void seed_torch(uint64_t seed);

/// Mixes values into a well-spread 64-bit seed (splitmix64), for per-sample and per-step seeds.
uint64_t mix_seed(uint64_t a, uint64_t b, uint64_t c = 0);

}  // namespace cseg::core
