#include "cseg/methods/continual_losses.h"

#include <cmath>

#include "cseg/core/error.h"

namespace F = torch::nn::functional;

namespace cseg::methods {

torch::Tensor lwf_kd(const torch::Tensor& x, const torch::Tensor& x_old) {
  const int64_t c_old = x_old.size(1);
  auto log_p = torch::log_softmax(x.narrow(1, 0, c_old), 1);
  auto q = torch::softmax(x_old, 1);
  return -(q * log_p).mean(1).mean();
}

torch::Tensor onehot_bce(const torch::Tensor& x, const torch::Tensor& target) {
  const int64_t c = x.size(1);
  auto valid = target != 255;
  auto safe = torch::where(valid, target, torch::zeros_like(target));
  auto onehot = F::one_hot(safe, c).permute({0, 3, 1, 2}).to(x.scalar_type());
  auto per_pixel = F::binary_cross_entropy_with_logits(x, onehot, F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kNone))
                       .sum(1);
  auto n = valid.sum();
  return (per_pixel * valid).sum() / n.clamp_min(1);
}

torch::Tensor sigmoid_kd(const torch::Tensor& x, const torch::Tensor& x_old) {
  return F::binary_cross_entropy_with_logits(x.narrow(1, 0, x_old.size(1)), torch::sigmoid(x_old));
}

torch::Tensor unbiased_ce(const torch::Tensor& x, const torch::Tensor& target, int num_old) {
  if (num_old <= 0) return F::cross_entropy(x, target, F::CrossEntropyFuncOptions().ignore_index(255));
  const int64_t c = x.size(1);
  auto den = torch::logsumexp(x, 1, true);
  auto bg = torch::logsumexp(x.narrow(1, 0, num_old), 1, true) - den;
  // Old-class channels 1..C_old-1 are never a target: any value works, keep their log-softmax.
  auto log_p = torch::cat({bg, x.narrow(1, 1, c - 1) - den}, 1);
  auto labels = torch::where(target < num_old, torch::zeros_like(target), target);
  return F::nll_loss(log_p, labels, F::NLLLossFuncOptions().ignore_index(255));
}

torch::Tensor unbiased_kd(const torch::Tensor& x, const torch::Tensor& x_old) {
  const int64_t c_old = x_old.size(1), c = x.size(1);
  auto den = torch::logsumexp(x, 1);
  auto bg_and_new = c > c_old ? torch::cat({x.narrow(1, 0, 1), x.narrow(1, c_old, c - c_old)}, 1) : x.narrow(1, 0, 1);
  auto log_bg = torch::logsumexp(bg_and_new, 1) - den;                    // [N, H, W]
  auto log_old = x.narrow(1, 1, c_old - 1) - den.unsqueeze(1);            // [N, C_old-1, H, W]
  auto q = torch::softmax(x_old, 1);
  auto per_pixel = (q.select(1, 0) * log_bg + (q.narrow(1, 1, c_old - 1) * log_old).sum(1)) / double(c_old);
  return -per_pixel.mean();
}

namespace {
/// Width- and height-pooled means of every region of every scale, concatenated: [N, D].
torch::Tensor pod_embedding(const torch::Tensor& m, const std::vector<int>& scales) {
  const int64_t n = m.size(0), h = m.size(2), w = m.size(3);
  std::vector<torch::Tensor> parts;
  // Region i of s along an axis of length L: [floor(i L / s), ceil((i+1) L / s)), never empty.
  auto bounds = [](int64_t i, int64_t s, int64_t len) {
    const int64_t lo = std::min(i * len / s, len - 1);
    const int64_t hi = std::max(lo + 1, std::min(((i + 1) * len + s - 1) / s, len));
    return std::make_pair(lo, hi);
  };
  for (int s : scales) {
    for (int i = 0; i < s; ++i) {
      const auto [y0, y1] = bounds(i, s, h);
      for (int j = 0; j < s; ++j) {
        const auto [x0, x1] = bounds(j, s, w);
        auto region = m.slice(2, y0, y1).slice(3, x0, x1);
        parts.push_back(region.mean(3).reshape({n, -1}));  // width-pooled: C x h
        parts.push_back(region.mean(2).reshape({n, -1}));  // height-pooled: C x w
      }
    }
  }
  return torch::cat(parts, 1);
}
}  // namespace

torch::Tensor local_pod(const torch::Tensor& old_map, const torch::Tensor& new_map, const std::vector<int>& scales) {
  CSEG_CHECK(old_map.sizes() == new_map.sizes(), "local POD: maps differ in shape ([{}] vs [{}])",
             fmt::join(old_map.sizes(), ", "), fmt::join(new_map.sizes(), ", "));
  auto a = pod_embedding(old_map.pow(2), scales);
  auto b = pod_embedding(new_map.pow(2), scales);
  return (a - b).norm(2, 1).mean();
}

torch::Tensor normalized_entropy(const torch::Tensor& logits) {
  auto log_p = torch::log_softmax(logits, 1);
  return -(log_p.exp() * log_p).sum(1) / std::log(double(logits.size(1)));
}

}  // namespace cseg::methods
