#include "cseg/adaptation/pseudo_labels.h"

#include <cmath>

namespace cseg::adaptation {

torch::Tensor hard_pseudo_labels(const torch::Tensor& teacher_logits, double threshold, double class_fraction) {
  torch::NoGradGuard no_grad;
  auto [confidence, label] = teacher_logits.softmax(1).max(1);
  auto keep = confidence >= threshold;
  if (class_fraction > 0) {
    const auto flat_conf = confidence.reshape({-1}), flat_label = label.reshape({-1});
    for (int64_t c = 0; c < teacher_logits.size(1); ++c) {
      const auto of_c = flat_label.eq(c);
      const int64_t n = of_c.sum().item<int64_t>();
      if (n == 0) continue;
      const int64_t k = std::max<int64_t>(1, int64_t(std::ceil(class_fraction * double(n))));
      const double kth = std::get<0>(flat_conf.masked_select(of_c).topk(k)).min().item<double>();
      keep |= label.eq(c) & confidence.ge(kth);
    }
  }
  return label.masked_fill(keep.logical_not(), 255).to(torch::kInt64);
}

torch::Tensor soft_pseudo_label_loss(const torch::Tensor& student_logits, const torch::Tensor& teacher_logits,
                                     double temperature) {
  const auto target = (teacher_logits.detach() / temperature).softmax(1);
  return -(target * student_logits.log_softmax(1)).sum(1).mean();
}

double labelled_fraction(const torch::Tensor& labels) {
  return labels.ne(255).to(torch::kFloat).mean().item<double>();
}

}  // namespace cseg::adaptation
