#pragma once
/// Per-frame uncertainty and a new-environment detector: a deployed robot that notices when what
/// it sees stops looking like what it knows (the model's uncertainty jumps) can start adapting,
/// or ask for labels, at that frame rather than on a schedule.
#include <torch/types.h>

#include <deque>

namespace cseg::adaptation {

/// Mean softmax entropy per image, divided by log(C) so it lies in [0, 1] whatever the class
/// count: logits [N, C, H, W] -> [N] float.
torch::Tensor mean_normalised_entropy(const torch::Tensor& logits);

struct ChangeDetectorOptions {
  int window = 30;         ///< frames of the current environment the baseline is computed over
  int min_history = 8;     ///< frames needed before anything is flagged
  double sigmas = 4.0;     ///< a frame is unusual above mean + sigmas * std of the baseline ...
  double min_rise = 0.03;  ///< ... and at least this far above the mean (noise-free baselines)
  int patience = 3;        ///< consecutive unusual frames that make a change (one blurred frame does not)
};

/// Flags a new environment when the per-frame uncertainty rises above what the current
/// environment's recent frames make usual, for `patience` frames in a row. After a change the
/// baseline restarts from the frames that triggered it: the new environment becomes the usual.
class EnvironmentChangeDetector {
 public:
  explicit EnvironmentChangeDetector(ChangeDetectorOptions options = {});
  /// Feeds the next frame's uncertainty; true on the frame where a change is confirmed.
  bool update(double uncertainty);
  /// The bar a frame must exceed to count as unusual (infinity before min_history frames).
  double threshold() const;
  int changes() const { return changes_; }

 private:
  ChangeDetectorOptions options_;
  std::deque<double> baseline_;  ///< the current environment's recent frames
  std::deque<double> pending_;   ///< unusual frames in a row, not yet a change
  int changes_ = 0;
};

}  // namespace cseg::adaptation
