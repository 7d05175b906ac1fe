#include "cseg/data/class_index.h"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <thread>

#include "cseg/core/error.h"
#include "cseg/core/files.h"

namespace fs = std::filesystem;

namespace cseg::data {

void parallel_for(size_t n, int threads, const std::function<void(size_t)>& fn) {
  threads = std::max(1, threads);
  std::atomic<size_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto worker = [&] {
    for (size_t i = next++; i < n; i = next++) {
      try {
        fn(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
        next = n;  // stop the others early
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

namespace {
uint64_t fnv1a(const std::string& s, uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}
constexpr uint32_t kMagic = 0x43534731;  // "CSG1"
}  // namespace

std::vector<LabelSet> build_class_index(const Dataset& dataset, const std::string& cache_dir, int threads) {
  uint64_t key = fnv1a(dataset.describe());
  for (size_t i = 0; i < dataset.size(); ++i) key = fnv1a(dataset.mask_stamp(i), fnv1a(dataset.id(i), key));
  fs::path cache;
  if (!cache_dir.empty()) cache = fs::path(cache_dir) / fmt::format("classes-{:016x}.bin", key);

  std::vector<LabelSet> index(dataset.size());
  if (!cache.empty() && fs::exists(cache)) {
    std::ifstream in(cache, std::ios::binary);
    uint32_t magic = 0;
    uint64_t count = 0;
    in.read(reinterpret_cast<char*>(&magic), 4).read(reinterpret_cast<char*>(&count), 8);
    if (in && magic == kMagic && count == index.size()) {
      for (auto& s : index) {
        uint64_t words[4];
        in.read(reinterpret_cast<char*>(words), sizeof words);
        for (int w = 0; w < 4; ++w)
          for (int b = 0; b < 64; ++b) s[w * 64 + b] = (words[w] >> b) & 1u;
      }
      if (in) return index;
    }
  }
  parallel_for(index.size(), threads, [&](size_t i) {
    cv::Mat mask = dataset.load_mask(i);
    LabelSet s;
    for (int y = 0; y < mask.rows; ++y) {
      const uint8_t* row = mask.ptr<uint8_t>(y);
      for (int x = 0; x < mask.cols; ++x) s[row[x]] = true;
    }
    index[i] = s;
  });
  if (!cache.empty()) {
    fs::create_directories(cache.parent_path());
    const fs::path tmp = core::temp_path_for(cache.string());
    {
      std::ofstream out(tmp, std::ios::binary);
      uint64_t count = index.size();
      out.write(reinterpret_cast<const char*>(&kMagic), 4).write(reinterpret_cast<const char*>(&count), 8);
      for (const auto& s : index) {
        uint64_t words[4] = {0, 0, 0, 0};
        for (int b = 0; b < 256; ++b)
          if (s[b]) words[b / 64] |= 1ull << (b % 64);
        out.write(reinterpret_cast<const char*>(words), sizeof words);
      }
    }
    fs::rename(tmp, cache);
  }
  return index;
}

}  // namespace cseg::data
