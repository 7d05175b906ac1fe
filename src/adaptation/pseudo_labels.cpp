#include "cseg/adaptation/pseudo_labels.h"

#include <torch/torch.h>

#include <cmath>

#include "cseg/core/error.h"

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

double labelled_fraction(const torch::Tensor& labels) { return labels.ne(255).to(torch::kFloat).mean().item<double>(); }

}  // namespace cseg::adaptation

namespace cseg::adaptation {

torch::Tensor photometric_jitter(const torch::Tensor& images, double strength, const std::vector<double>& mean,
                                 const std::vector<double>& std) {
  CSEG_CHECK(images.dim() == 4 && images.size(1) == 3, "photometric_jitter: expected images [N, 3, H, W]");
  CSEG_CHECK(mean.size() == 3 && std.size() == 3, "photometric_jitter: mean and std need 3 values each");
  CSEG_CHECK(strength >= 0 && strength < 1, "photometric_jitter: strength {} must be in [0, 1)", strength);
  torch::NoGradGuard no_grad;
  const auto opts = images.options();
  const auto m = torch::tensor(mean, opts.dtype(torch::kDouble)).to(opts.dtype()).view({1, 3, 1, 1});
  const auto s = torch::tensor(std, opts.dtype(torch::kDouble)).to(opts.dtype()).view({1, 3, 1, 1});
  const int64_t n = images.size(0);
  auto uniform = [&](std::vector<int64_t> shape) { return (torch::rand(shape, opts) * 2 - 1) * strength + 1; };
  auto x = images * s + m;  // back to [0, 1] pixels
  const auto grey = x.mean({1, 2, 3}, true);
  x = (x - grey) * uniform({n, 1, 1, 1}) + grey;          // contrast around the image's mean
  x = x * uniform({n, 1, 1, 1}) * uniform({n, 3, 1, 1});  // brightness, colour of the light
  x = x + torch::randn_like(x) * (0.05 * strength);       // sensor noise
  return (x.clamp(0, 1) - m) / s;
}

}  // namespace cseg::adaptation
