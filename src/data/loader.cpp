#include "cseg/data/loader.h"

#include <opencv2/core/utility.hpp>
#include <random>

#include "cseg/core/error.h"
#include "cseg/core/runtime.h"
#include "cseg/data/transforms.h"

namespace cseg::data {

std::array<uint8_t, 256> identity_lut() {
  std::array<uint8_t, 256> t;
  for (int i = 0; i < 256; ++i) t[i] = static_cast<uint8_t>(i);
  return t;
}

torch::Tensor image_tensor(const cv::Mat& rgb, const std::vector<double>& mean, const std::vector<double>& std) {
  CSEG_CHECK(rgb.type() == CV_8UC3 && rgb.isContinuous(), "image_tensor: expected a continuous 8-bit RGB image");
  CSEG_CHECK(mean.size() == 3 && std.size() == 3, "image_tensor: mean and std need 3 values each");
  auto t = torch::from_blob(const_cast<uint8_t*>(rgb.ptr<uint8_t>()), {rgb.rows, rgb.cols, 3}, torch::kUInt8)
               .permute({2, 0, 1})
               .to(torch::kFloat)
               .div_(255.0);
  auto m = torch::tensor({mean[0], mean[1], mean[2]}, torch::kFloat).view({3, 1, 1});
  auto s = torch::tensor({std[0], std[1], std[2]}, torch::kFloat).view({3, 1, 1});
  return (t - m) / s;
}

namespace {
/// An H x W x C OpenCV map into the top-left of `slot` ([C, H', W'] or [H', W'] for one channel).
void copy_map(const cv::Mat& m, torch::Tensor slot, const cv::Rect& at) {
  cv::Mat c = m.isContinuous() ? m : m.clone();
  const auto type = c.depth() == CV_32F ? torch::kFloat : torch::kUInt8;
  auto t = torch::from_blob(c.data, {c.rows, c.cols, c.channels()}, type).permute({2, 0, 1});
  if (slot.dim() == 2) t = t.squeeze(0);
  slot.slice(-2, 0, at.height)
      .slice(-1, 0, at.width)
      .copy_(slot.scalar_type() == torch::kBool ? t.ne(0) : t.to(slot.scalar_type()));
}
}  // namespace

Loader::Loader(const Dataset& dataset, std::vector<size_t> indices, LoaderOptions options)
    : dataset_(dataset), indices_(std::move(indices)), options_(std::move(options)) {
  CSEG_CHECK(!indices_.empty(), "{}: the loader was given no images", dataset_.describe());
  CSEG_CHECK(options_.batch_size > 0, "batch size must be > 0");
  CSEG_CHECK(options_.shard_count >= 1 && options_.shard_rank >= 0 && options_.shard_rank < options_.shard_count,
             "loader shard {} of {} is out of range", options_.shard_rank, options_.shard_count);
  CSEG_CHECK(options_.batch_size % options_.shard_count == 0,
             "train.batch_size {} (the global batch) does not split evenly over {} processes", options_.batch_size,
             options_.shard_count);
  if (options_.next_frame) {
    CSEG_CHECK(!dataset_.sequences().empty(),
               "{}: the next frame was asked for, but the dataset has no video "
               "sequences",
               dataset_.describe());
    next_of_ = next_frame_indices(dataset_);
  }
  // Loader threads already run in parallel; OpenCV's own pool would oversubscribe 2 cores.
  cv::setNumThreads(1);
}

Loader::~Loader() { stop_workers(); }

size_t Loader::batches_per_epoch() const {
  const size_t b = options_.batch_size;
  return options_.train ? indices_.size() / b : (indices_.size() + b - 1) / b;
}

void Loader::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
  stopping_ = false;
}

void Loader::start_epoch(int epoch, size_t first_batch) {
  stop_workers();
  epoch_ = epoch;
  order_ = indices_;
  if (options_.train) {
    std::mt19937_64 rng(core::mix_seed(options_.seed, 0x5EED, epoch));
    std::shuffle(order_.begin(), order_.end(), rng);
  }
  total_ = batches_per_epoch();
  CSEG_CHECK(total_ > 0, "{}: {} images are fewer than one batch of {}", dataset_.describe(), indices_.size(),
             options_.batch_size);
  CSEG_CHECK(first_batch <= total_, "{}: epoch {} has {} batches, cannot begin at batch {}", dataset_.describe(), epoch,
             total_, first_batch);
  consumed_ = claimed_ = first_batch;
  ready_.clear();
  error_ = nullptr;
  for (int t = 0; t < options_.workers; ++t) threads_.emplace_back([this] { worker_loop(); });
}

void Loader::worker_loop() {
  while (true) {
    size_t mine;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [&] {
        return stopping_ || claimed_ >= total_ || claimed_ < consumed_ + size_t(std::max(1, options_.prefetch));
      });
      if (stopping_ || claimed_ >= total_ || error_) return;
      mine = claimed_++;
    }
    try {
      Batch b = make_batch(mine);
      std::lock_guard<std::mutex> lock(mutex_);
      ready_.emplace(mine, std::move(b));
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) error_ = std::current_exception();
    }
    cv_.notify_all();
  }
}

std::optional<Batch> Loader::next() {
  if (consumed_ >= total_) return std::nullopt;
  if (options_.workers == 0) return make_batch(consumed_++);
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait(lock, [&] { return error_ || ready_.count(consumed_); });
  if (error_) std::rethrow_exception(error_);
  Batch b = std::move(ready_.at(consumed_));
  ready_.erase(consumed_);
  ++consumed_;
  lock.unlock();
  cv_.notify_all();
  return b;
}

Batch Loader::make_batch(size_t batch_number) const {
  const size_t begin = batch_number * options_.batch_size;
  const size_t end = std::min(order_.size(), begin + options_.batch_size);
  std::vector<size_t> positions;  // this process's share of the global batch
  for (size_t pos = begin + options_.shard_rank; pos < end; pos += options_.shard_count) positions.push_back(pos);
  std::vector<Sample> samples;
  samples.reserve(positions.size());
  for (size_t pos : positions) {
    Sample s = dataset_.load(order_[pos]);
    if (options_.saliency) {
      s.saliency = dataset_.load_saliency(order_[pos]);
      CSEG_CHECK(s.saliency.size() == s.mask.size(), "{}: saliency map of '{}' is {}x{}, its image {}x{}",
                 dataset_.describe(), s.id, s.saliency.cols, s.saliency.rows, s.mask.cols, s.mask.rows);
    }
    if (options_.depth) {
      s.depth = dataset_.load_depth(order_[pos]);
      CSEG_CHECK(s.depth.size() == s.mask.size() && s.depth.type() == CV_32FC1,
                 "{}: depth map of '{}' is {}x{}, its image {}x{}", dataset_.describe(), s.id, s.depth.cols,
                 s.depth.rows, s.mask.cols, s.mask.rows);
    }
    if (options_.next_frame && next_of_[order_[pos]] >= 0) {
      s.next_image = dataset_.load_image(size_t(next_of_[order_[pos]]));
      CSEG_CHECK(s.next_image.size() == s.image.size(), "{}: the frame after '{}' is {}x{}, it is {}x{}",
                 dataset_.describe(), s.id, s.next_image.cols, s.next_image.rows, s.image.cols, s.image.rows);
    }
    if (options_.prepare) options_.prepare(s);
    if (options_.next_frame)
      CSEG_CHECK(!s.next_image.empty() && s.flow.type() == CV_32FC2 && s.flow_valid.type() == CV_8UC1,
                 "loader: the next frame was asked for, but nothing gave '{}' its next image and flow", s.id);
    if (options_.train) {
      std::mt19937_64 rng(core::mix_seed(options_.seed, epoch_, pos));
      augment_train(s, options_.augment, rng);
    }
    remap_labels(s.mask, options_.lut);
    samples.push_back(std::move(s));
  }
  int h = 0, w = 0;
  for (const auto& s : samples) {
    h = std::max(h, s.image.rows);
    w = std::max(w, s.image.cols);
  }
  const int64_t n = static_cast<int64_t>(samples.size());
  // Smaller images (evaluation at full resolution) are padded: image with 0 after normalisation,
  // labels with 255 so padding never counts in a metric or a loss.
  Batch batch;
  batch.images = torch::zeros({n, 3, h, w}, torch::kFloat32);
  batch.labels = torch::full({n, h, w}, 255, torch::kInt64);
  if (options_.saliency) batch.saliency = torch::zeros({n, h, w}, torch::kUInt8);
  if (options_.depth) batch.depth = torch::zeros({n, h, w}, torch::kFloat32);
  if (options_.next_frame) {
    batch.next_images = torch::zeros({n, 3, h, w}, torch::kFloat32);
    batch.flow = torch::zeros({n, 2, h, w}, torch::kFloat32);
    batch.flow_valid = torch::zeros({n, h, w}, torch::kBool);
  }
  auto img = batch.images.accessor<float, 4>();
  auto lab = batch.labels.accessor<int64_t, 3>();
  float scale[3], shift[3];
  for (int c = 0; c < 3; ++c) {
    scale[c] = static_cast<float>(1.0 / (255.0 * options_.augment.std[c]));
    shift[c] = static_cast<float>(options_.augment.mean[c] / options_.augment.std[c]);
  }
  for (int64_t i = 0; i < n; ++i) {
    const Sample& s = samples[i];
    for (int y = 0; y < s.image.rows; ++y) {
      const uint8_t* px = s.image.ptr<uint8_t>(y);
      const uint8_t* lb = s.mask.ptr<uint8_t>(y);
      for (int x = 0; x < s.image.cols; ++x) {
        for (int c = 0; c < 3; ++c) img[i][c][y][x] = px[3 * x + c] * scale[c] - shift[c];
        lab[i][y][x] = lb[x];
      }
    }
    const cv::Rect at(0, 0, s.image.cols, s.image.rows);  // where a sample sits in its (padded) slot
    if (options_.depth) copy_map(s.depth, batch.depth[i], at);
    if (options_.next_frame) {
      batch.next_images[i]
          .slice(1, 0, at.height)
          .slice(2, 0, at.width)
          .copy_(image_tensor(s.next_image, options_.augment.mean, options_.augment.std));
      copy_map(s.flow, batch.flow[i], at);
      copy_map(s.flow_valid, batch.flow_valid[i], at);
    }
    if (options_.saliency) {
      auto sal = batch.saliency.accessor<uint8_t, 3>();
      for (int y = 0; y < s.saliency.rows; ++y) {
        const uint8_t* sp = s.saliency.ptr<uint8_t>(y);
        for (int x = 0; x < s.saliency.cols; ++x) sal[i][y][x] = sp[x];
      }
    }
    batch.ids.push_back(s.id);
    batch.indices.push_back(order_[positions[i]]);
  }
  return batch;
}

}  // namespace cseg::data
