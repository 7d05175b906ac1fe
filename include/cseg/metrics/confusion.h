#pragma once
/// Confusion matrix and the segmentation metrics derived from it. Accumulates sufficient
/// statistics; reduces once; never prints.
#include <cstdint>
#include <optional>
#include <vector>

namespace at {
class Tensor;
}

namespace cseg::metrics {

class ConfusionMatrix {
 public:
  explicit ConfusionMatrix(int num_classes);
  /// pred, target: int64 tensors of the same shape; target 255 is skipped. Targets >= C are an
  /// error; predictions must be < C.
  void update(const at::Tensor& pred, const at::Tensor& target);
  void add(int target, int pred, int64_t count = 1);
  int num_classes() const { return n_; }
  /// counts[t * C + p]: pixels of true class t predicted as p.
  const std::vector<int64_t>& counts() const { return counts_; }
  int64_t at(int t, int p) const { return counts_[size_t(t) * n_ + p]; }
  void merge(const ConfusionMatrix& other);

 private:
  int n_;
  std::vector<int64_t> counts_;
};

struct SegmentationScores {
  std::vector<std::optional<double>> iou;        ///< per class; nullopt when the class has no
  std::vector<std::optional<double>> precision;  ///< ground truth (IoU, recall) or no prediction
  std::vector<std::optional<double>> recall;     ///< (precision)
  double miou = 0;                               ///< mean IoU over classes with ground-truth pixels (MiB's convention)
  double pixel_accuracy = 0;
  double mean_accuracy = 0;  ///< mean recall over classes with ground truth
  double fw_iou = 0;         ///< frequency-weighted IoU
};

SegmentationScores score(const ConfusionMatrix& cm);

/// Mean of IoU over classes [first, last) that have ground truth; nullopt if none has.
std::optional<double> mean_iou(const SegmentationScores& s, int first, int last);

/// Harmonic mean of old and new mIoU (0 if either is 0).
double harmonic_iou(double old_miou, double new_miou);

}  // namespace cseg::metrics
