#pragma once
/// Flow-propagated pseudo-labels for unlabelled video: the teacher's prediction for frame t is
/// averaged with its prediction for frame t+1 brought back by optical flow, where the flow is
/// trustworthy, so a pseudo-label must agree with what the next frame shows at the same surface
/// (temporal consistency). Computed once per step on whole frames, before augmentation, so crops
/// and flips keep labels and images aligned.
#include <torch/types.h>

#include <array>
#include <functional>
#include <opencv2/core.hpp>
#include <vector>

namespace cseg::data {
class Dataset;
}

namespace cseg::adaptation {

/// Probabilities [C, H, W] of frame t+1 at frame t's pixels, by frame t's forward flow
/// (bilinear; where the flow leaves the frame, 0).
torch::Tensor warp_probabilities(const torch::Tensor& next, const cv::Mat& flow);

/// Frame t's probabilities averaged with frame t+1's warped ones where `consistent` (CV_8UC1,
/// non-zero = the flow holds), frame t's alone elsewhere.
torch::Tensor fuse_with_next_frame(const torch::Tensor& current, const torch::Tensor& next_warped,
                                   const cv::Mat& consistent);

struct TemporalLabelStats {
  size_t frames = 0;               ///< frames labelled
  size_t fused = 0;                ///< of them, fused with a next frame
  double consistent_fraction = 0;  ///< mean share of fused frames' pixels where the flow held
  double labelled_fraction = 0;    ///< mean share of pixels given a pseudo-label
};

/// Hard pseudo-labels (threshold, class_fraction as hard_pseudo_labels) for every frame of
/// `frames`, in dataset order, as H x W uint8 maps (255 = none), each frame labelled on its own
/// (class_fraction then balances within the frame). With `fuse_with_next`, frames in a sequence
/// (Dataset::sequences) that have a next frame are fused with it; others use their own
/// prediction. `teacher` maps a normalised [1, 3, H, W] image to logits [1, C, H, W].
std::vector<cv::Mat> frame_pseudo_labels(const data::Dataset& frames,
                                         const std::function<torch::Tensor(const torch::Tensor&)>& teacher,
                                         const std::vector<double>& mean, const std::vector<double>& std,
                                         double threshold, double class_fraction, bool fuse_with_next,
                                         TemporalLabelStats* stats = nullptr);

/// How good pseudo-labels are, for benchmarks: `maps` (one per frame, 255 = none) against the
/// frames' masks in `with_masks` (dataset labels, mapped by `lut` to the labels the maps use).
struct PseudoLabelScore {
  double labelled_fraction = 0;  ///< share of pixels with a pseudo-label
  double accuracy = 0;           ///< of those (where the mask has a label), the share that is right
  double miou = 0;               ///< mean IoU of the pseudo-labels over classes present in the masks
};
PseudoLabelScore score_pseudo_labels(const std::vector<cv::Mat>& maps, const data::Dataset& with_masks,
                                     const std::array<uint8_t, 256>& lut, int num_classes);

}  // namespace cseg::adaptation
