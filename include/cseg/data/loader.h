#pragma once
/// The data loader: worker threads decode, augment, remap and collate batches ahead of the
/// consumer (`prefetch` batches), so loading overlaps the model's compute. Deterministic for a
/// given seed: the epoch's order and each sample's augmentation come from generators seeded by
/// (seed, epoch, position), whatever thread runs them.
#include <array>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "cseg/core/batch.h"
#include "cseg/data/dataset.h"
#include "cseg/data/options.h"

namespace cseg::data {

struct LoaderOptions {
  int batch_size = 8;
  bool train = true;  ///< shuffle + augment + drop the last partial batch
  int workers = 2;    ///< 0: load in the consumer's thread
  int prefetch = 4;
  uint64_t seed = 0;
  AugmentOptions augment;
  std::array<uint8_t, 256> lut{};  ///< dataset label -> step label
  bool saliency = false;           ///< also load, augment and collate saliency maps
  bool depth = false;              ///< also load, augment and collate depth maps
  /// Video: also load each frame's next frame in its sequence (Dataset::sequences; none for a
  /// last frame) and collate it with the flow to it, which `prepare` must fill.
  bool next_frame = false;
  /// Runs in the worker on each loaded sample before augmentation: derived per-pixel maps such as
  /// optical flow (adaptation::add_flow_to_next), computed on whole frames in parallel.
  std::function<void(Sample&)> prepare;
  /// Data-parallel training: every process forms the same global batches of `batch_size` and
  /// keeps the samples at positions shard_rank, shard_rank + shard_count, ... of each, so the
  /// global batch is the same whatever the process count (batch_size must divide evenly).
  int shard_rank = 0, shard_count = 1;
};

/// Identity label table.
std::array<uint8_t, 256> identity_lut();

/// One RGB image (H x W x 3 uint8) as the network takes it: [3, H, W] float32 in [0, 1],
/// normalised with `mean` and `std` (3 values each). For single images outside the Loader
/// (prediction, per-frame teacher passes); the Loader fuses the same into its collation.
torch::Tensor image_tensor(const cv::Mat& rgb, const std::vector<double>& mean, const std::vector<double>& std);

class Loader {
 public:
  Loader(const Dataset& dataset, std::vector<size_t> indices, LoaderOptions options);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  size_t batches_per_epoch() const;
  size_t num_samples() const { return indices_.size(); }
  /// Starts (or restarts) epoch `epoch`; batches come from next(), beginning at `first_batch`
  /// (a run resumed mid-epoch: the batches before it are neither loaded nor returned, and the
  /// rest are those an uninterrupted epoch gives).
  void start_epoch(int epoch, size_t first_batch = 0);
  /// The next batch of the epoch, or nullopt at its end. Rethrows a worker's error.
  std::optional<Batch> next();

 private:
  Batch make_batch(size_t batch_number) const;
  void stop_workers();
  void worker_loop();

  const Dataset& dataset_;
  std::vector<size_t> indices_;
  LoaderOptions options_;
  std::vector<size_t> order_;
  std::vector<int64_t> next_of_;  ///< next frame of each dataset index, -1 for none
  int epoch_ = 0;
  size_t consumed_ = 0, claimed_ = 0, total_ = 0;
  std::map<size_t, Batch> ready_;
  std::exception_ptr error_;
  bool stopping_ = false;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::thread> threads_;
};

}  // namespace cseg::data
