#include "cseg/metrics/confusion.h"

#include <torch/torch.h>

#include "cseg/core/error.h"

namespace cseg::metrics {

ConfusionMatrix::ConfusionMatrix(int num_classes) : n_(num_classes), counts_(size_t(num_classes) * num_classes, 0) {
  CSEG_CHECK(num_classes > 0, "a confusion matrix needs at least one class");
}

void ConfusionMatrix::update(const at::Tensor& pred, const at::Tensor& target) {
  CSEG_CHECK(pred.sizes() == target.sizes(), "confusion matrix: prediction and target shapes differ");
  auto t = target.reshape(-1).to(torch::kInt64);
  auto p = pred.reshape(-1).to(torch::kInt64);
  auto valid = t != 255;
  t = t.masked_select(valid);
  p = p.masked_select(valid);
  if (t.numel() == 0) return;
  CSEG_CHECK(t.max().item<int64_t>() < n_ && t.min().item<int64_t>() >= 0,
             "confusion matrix: a target label is outside 0..{}", n_ - 1);
  CSEG_CHECK(p.max().item<int64_t>() < n_ && p.min().item<int64_t>() >= 0,
             "confusion matrix: a prediction is outside 0..{}", n_ - 1);
  auto bins = torch::bincount(t * n_ + p, {}, int64_t(n_) * n_).to(torch::kInt64).contiguous();
  const int64_t* b = bins.data_ptr<int64_t>();
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += b[i];
}

void ConfusionMatrix::add(int t, int p, int64_t count) { counts_.at(size_t(t) * n_ + p) += count; }

void ConfusionMatrix::merge(const ConfusionMatrix& o) {
  CSEG_CHECK(o.n_ == n_, "cannot merge confusion matrices of {} and {} classes", o.n_, n_);
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += o.counts_[i];
}

SegmentationScores score(const ConfusionMatrix& cm) {
  const int n = cm.num_classes();
  SegmentationScores s;
  s.iou.resize(n);
  s.precision.resize(n);
  s.recall.resize(n);
  int64_t total = 0, correct = 0;
  std::vector<int64_t> gt(n, 0), pr(n, 0);
  for (int t = 0; t < n; ++t)
    for (int p = 0; p < n; ++p) {
      gt[t] += cm.at(t, p);
      pr[p] += cm.at(t, p);
      total += cm.at(t, p);
    }
  double iou_sum = 0, acc_sum = 0, fw = 0;
  int with_gt = 0;
  for (int c = 0; c < n; ++c) {
    const int64_t tp = cm.at(c, c);
    correct += tp;
    if (pr[c] > 0) s.precision[c] = double(tp) / pr[c];
    if (gt[c] == 0) continue;
    const double iou = double(tp) / double(gt[c] + pr[c] - tp);
    s.iou[c] = iou;
    s.recall[c] = double(tp) / gt[c];
    iou_sum += iou;
    acc_sum += *s.recall[c];
    fw += double(gt[c]) / double(total) * iou;
    ++with_gt;
  }
  if (total > 0) s.pixel_accuracy = double(correct) / total;
  if (with_gt > 0) {
    s.miou = iou_sum / with_gt;
    s.mean_accuracy = acc_sum / with_gt;
  }
  s.fw_iou = fw;
  return s;
}

std::optional<double> mean_iou(const SegmentationScores& s, int first, int last) {
  double sum = 0;
  int count = 0;
  for (int c = first; c < last && c < static_cast<int>(s.iou.size()); ++c)
    if (s.iou[c]) {
      sum += *s.iou[c];
      ++count;
    }
  if (count == 0) return std::nullopt;
  return sum / count;
}

double harmonic_iou(double o, double n) { return (o <= 0 || n <= 0) ? 0.0 : 2 * o * n / (o + n); }

}  // namespace cseg::metrics
