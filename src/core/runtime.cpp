#include "cseg/core/runtime.h"

#include <malloc.h>
#include <sys/resource.h>

#include <thread>

namespace cseg::core {

void configure_runtime(const RuntimeOptions& options) {
  int threads =
      options.threads > 0 ? options.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(threads);
  if (options.tune_malloc) {
    // The mallopt equivalent of MALLOC_MMAP_THRESHOLD_/TRIM_THRESHOLD_/TOP_PAD_: large
    // activations stay in the heap between iterations instead of being mapped and unmapped
    // each time (the "malloc untuned" rows of bench/README.md show what glibc's default costs).
    mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    mallopt(M_TOP_PAD, 1024 * 1024 * 1024);
  }
}

double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / 1024.0;
}

void seed_torch(uint64_t seed) { torch::manual_seed(seed); }

uint64_t mix_seed(uint64_t a, uint64_t b, uint64_t c) {
  auto splitmix = [](uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
  };
  return splitmix(splitmix(splitmix(a) ^ b) ^ c);
}

}  // namespace cseg::core
