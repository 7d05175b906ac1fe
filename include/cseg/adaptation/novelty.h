#pragma once
/// Per-frame uncertainty and a new-environment detector: a deployed robot that notices when what
/// it sees stops looking like what it knows (the model's uncertainty jumps) can start adapting,
/// or ask for labels, at that frame rather than on a schedule.
#include <torch/types.h>

#include <deque>
#include <vector>

#include "cseg/config/experiment.h"

namespace cseg::adaptation {

using ChangeDetectorOptions = config::ChangeDetectorOptions;  ///< adaptation.detector

/// Mean softmax entropy per image, divided by log(C) so it lies in [0, 1] whatever the class
/// count: logits [N, C, H, W] -> [N] float.
torch::Tensor mean_normalised_entropy(const torch::Tensor& logits);

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

/// Per row of `frames` [n, D] (a frame's features): how far it lies from the rows of `known`
/// [m, D], m >= 2: the root mean square over the D channels of (x - mean) / std, with the mean and
/// the (sample) standard deviation of each channel over `known`. A frame like the known ones
/// scores about 1, whichever direction it moves in.
std::vector<double> feature_shift(const torch::Tensor& known, const torch::Tensor& frames);

/// Where a stream of frames from the environment the model knows (`history`) followed by the
/// frames of the environment it is arriving in (`arriving`) shows the arrival, scored against
/// the known boundary between the two.
struct ArrivalDetection {
  /// The arriving environment's frame (0-based) at which the detector confirmed the change; the
  /// robot starts adapting there. -1: the arrival went unnoticed.
  int detected_at = -1;
  /// Changes flagged where there was none: among the history frames, or after the first
  /// detection in the arriving environment (the detector's baseline restarts at each change).
  int false_alarms = 0;
  double history_mean = 0, arriving_mean = 0;  ///< mean uncertainty of each part
};

/// Plays `history` then `arriving` (per-frame uncertainties, in stream order) through a fresh
/// detector with `options` and scores what it flags.
ArrivalDetection locate_arrival(const std::vector<double>& history, const std::vector<double>& arriving,
                                const ChangeDetectorOptions& options);

}  // namespace cseg::adaptation
