#include "cseg/adaptation/temporal.h"

#include <torch/torch.h>

#include "cseg/adaptation/consistency.h"
#include "cseg/adaptation/optical_flow.h"
#include "cseg/adaptation/pseudo_labels.h"
#include "cseg/core/error.h"
#include "cseg/data/dataset.h"
#include "cseg/data/loader.h"
#include "cseg/data/transforms.h"
#include "cseg/metrics/confusion.h"

namespace cseg::adaptation {

torch::Tensor warp_probabilities(const torch::Tensor& next, const cv::Mat& flow) {
  CSEG_CHECK(next.dim() == 3 && flow.type() == CV_32FC2 && flow.rows == next.size(1) && flow.cols == next.size(2),
             "warp_probabilities: expected [C, H, W] probabilities and an H x W x 2 flow of the same size");
  auto f = torch::from_blob(const_cast<float*>(flow.ptr<float>()), {1, flow.rows, flow.cols, 2}, torch::kFloat);
  return warp_to_current(next.unsqueeze(0), f.permute({0, 3, 1, 2})).squeeze(0);
}

torch::Tensor fuse_with_next_frame(const torch::Tensor& current, const torch::Tensor& next_warped,
                                   const cv::Mat& consistent) {
  CSEG_CHECK(current.sizes() == next_warped.sizes() && consistent.type() == CV_8UC1 &&
                 consistent.rows == current.size(1) && consistent.cols == current.size(2),
             "fuse_with_next_frame: probabilities and mask differ in size");
  auto keep = torch::from_blob(const_cast<uint8_t*>(consistent.ptr<uint8_t>()), {current.size(1), current.size(2)},
                               torch::kUInt8)
                  .ne(0)
                  .unsqueeze(0);
  return torch::where(keep, 0.5 * (current + next_warped), current);
}

std::vector<cv::Mat> frame_pseudo_labels(const data::Dataset& frames,
                                         const std::function<torch::Tensor(const torch::Tensor&)>& teacher,
                                         const std::vector<double>& mean, const std::vector<double>& std,
                                         double threshold, double class_fraction, bool fuse_with_next,
                                         TemporalLabelStats* stats) {
  torch::NoGradGuard no_grad;
  const size_t n = frames.size();
  const std::vector<int64_t> next_of = fuse_with_next ? data::next_frame_indices(frames) : std::vector<int64_t>(n, -1);
  TemporalLabelStats st;
  std::vector<cv::Mat> labels(n);
  // Frames are visited in order, so a sequence's frame t+1 is predicted once, as the next of t
  // and then reused as the current frame.
  int64_t cached_index = -1;
  cv::Mat cached_image;
  torch::Tensor cached_probs;
  auto predict = [&](size_t i, cv::Mat& image) {
    if (int64_t(i) == cached_index) {
      image = cached_image;
      return cached_probs;
    }
    image = frames.load_image(i);
    return teacher(data::image_tensor(image, mean, std).unsqueeze(0)).squeeze(0).to(torch::kFloat).softmax(0);
  };
  for (size_t i = 0; i < n; ++i) {
    cv::Mat image;
    auto probs = predict(i, image);
    if (next_of[i] >= 0) {
      cv::Mat next_image;
      auto next_probs = predict(size_t(next_of[i]), next_image);
      CSEG_CHECK(next_image.size() == image.size(), "{}: frames {} and {} of a sequence differ in size",
                 frames.describe(), frames.id(i), frames.id(size_t(next_of[i])));
      const cv::Mat forward = estimate_flow(image, next_image), backward = estimate_flow(next_image, image);
      const cv::Mat consistent = consistent_flow_mask(forward, backward, 1.0);
      probs = fuse_with_next_frame(probs, warp_probabilities(next_probs, forward), consistent);
      st.consistent_fraction += double(cv::countNonZero(consistent)) / double(consistent.total());
      ++st.fused;
      cached_index = next_of[i];
      cached_image = next_image;
      cached_probs = next_probs;
    }
    // hard_pseudo_labels takes logits: log-probabilities give back the same softmax.
    auto hard = hard_pseudo_labels(probs.clamp_min(1e-12).log().unsqueeze(0), threshold, class_fraction)
                    .squeeze(0)
                    .to(torch::kUInt8)
                    .contiguous();
    labels[i] = cv::Mat(image.rows, image.cols, CV_8UC1, hard.data_ptr<uint8_t>()).clone();
    st.labelled_fraction += double(cv::countNonZero(labels[i] != 255)) / double(labels[i].total());
    ++st.frames;
  }
  if (st.fused) st.consistent_fraction /= double(st.fused);
  if (st.frames) st.labelled_fraction /= double(st.frames);
  if (stats) *stats = st;
  return labels;
}

PseudoLabelScore score_pseudo_labels(const std::vector<cv::Mat>& maps, const data::Dataset& with_masks,
                                     const std::array<uint8_t, 256>& lut, int num_classes) {
  CSEG_CHECK(maps.size() == with_masks.size(), "score_pseudo_labels: {} maps for {} frames of {}", maps.size(),
             with_masks.size(), with_masks.describe());
  metrics::ConfusionMatrix cm(num_classes);
  double labelled = 0, pixels = 0;
  for (size_t i = 0; i < maps.size(); ++i) {
    cv::Mat mask = with_masks.load_mask(i);
    CSEG_CHECK(mask.size() == maps[i].size(), "score_pseudo_labels: the mask of '{}' is {}x{}, its pseudo-labels {}x{}",
               with_masks.id(i), mask.cols, mask.rows, maps[i].cols, maps[i].rows);
    data::remap_labels(mask, lut);
    for (int y = 0; y < mask.rows; ++y) {
      const uint8_t* p = maps[i].ptr<uint8_t>(y);
      const uint8_t* t = mask.ptr<uint8_t>(y);
      for (int x = 0; x < mask.cols; ++x) {
        if (p[x] == 255) continue;
        ++labelled;
        if (t[x] != 255 && t[x] < num_classes && p[x] < num_classes) cm.add(t[x], p[x]);
      }
    }
    pixels += double(mask.total());
  }
  PseudoLabelScore s;
  s.labelled_fraction = pixels > 0 ? labelled / pixels : 0;
  int64_t right = 0, all = 0;
  for (int c = 0; c < num_classes; ++c)
    for (int p = 0; p < num_classes; ++p) (c == p ? right : all) += cm.at(c, p);
  all += right;
  s.accuracy = all > 0 ? double(right) / double(all) : 0;
  s.miou = metrics::score(cm).miou;
  return s;
}

}  // namespace cseg::adaptation
