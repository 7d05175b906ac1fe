#include "cseg/adaptation/consistency.h"

#include <torch/torch.h>

#include "cseg/core/error.h"

namespace cseg::adaptation {

namespace F = torch::nn::functional;

torch::Tensor warp_to_current(const torch::Tensor& next, const torch::Tensor& flow, torch::Tensor* inside) {
  CSEG_CHECK(next.dim() == 4 && flow.dim() == 4 && flow.size(1) == 2 && flow.size(0) == next.size(0) &&
                 flow.size(2) == next.size(2) && flow.size(3) == next.size(3),
             "warp_to_current: expected maps [N, C, H, W] and a flow [N, 2, H, W] of the same size");
  const int64_t h = next.size(2), w = next.size(3);
  auto opts = flow.options().dtype(torch::kFloat);
  auto xs = torch::arange(w, opts).view({1, 1, w}) + flow.select(1, 0).to(torch::kFloat);
  auto ys = torch::arange(h, opts).view({1, h, 1}) + flow.select(1, 1).to(torch::kFloat);
  if (inside) *inside = xs.ge(0).logical_and(xs.le(w - 1)).logical_and(ys.ge(0)).logical_and(ys.le(h - 1));
  // grid_sample wants positions in [-1, 1] (align_corners: -1 and 1 are the border pixels' centres).
  auto grid =
      torch::stack({xs * (2.0 / std::max<int64_t>(w - 1, 1)) - 1, ys * (2.0 / std::max<int64_t>(h - 1, 1)) - 1}, 3);
  return F::grid_sample(
      next.to(torch::kFloat), grid,
      F::GridSampleFuncOptions().mode(torch::kBilinear).padding_mode(torch::kZeros).align_corners(true));
}

torch::Tensor temporal_consistency_loss(const torch::Tensor& logits, const torch::Tensor& next_logits,
                                        const torch::Tensor& flow, const torch::Tensor& valid) {
  CSEG_CHECK(logits.sizes() == next_logits.sizes() && valid.dim() == 3 && valid.size(0) == logits.size(0) &&
                 valid.size(1) == logits.size(2) && valid.size(2) == logits.size(3),
             "temporal_consistency_loss: logits of both frames [N, C, H, W] and a validity mask [N, H, W] expected");
  torch::Tensor inside, target;
  {
    torch::NoGradGuard no_grad;
    target = warp_to_current(next_logits.detach().to(torch::kFloat).softmax(1), flow, &inside);
  }
  const auto keep = valid.to(torch::kBool).logical_and(inside).to(torch::kFloat);
  const auto count = keep.sum();
  const auto log_p = logits.to(torch::kFloat).log_softmax(1);
  const auto kl = (target * (target.clamp_min(1e-8).log() - log_p)).sum(1);  // [N, H, W]
  return (kl * keep).sum() / count.clamp_min(1);
}

torch::Tensor depth_edge_loss(const torch::Tensor& logits, const torch::Tensor& depth, double edge) {
  CSEG_CHECK(logits.dim() == 4 && depth.dim() == 3 && depth.size(0) == logits.size(0) &&
                 depth.size(1) == logits.size(2) && depth.size(2) == logits.size(3),
             "depth_edge_loss: logits [N, C, H, W] and depth [N, H, W] of the same size expected");
  CSEG_CHECK(edge > 0, "depth_edge_loss: the depth step must be > 0 (got {})", edge);
  const auto p = logits.to(torch::kFloat).softmax(1);
  const auto d = depth.to(torch::kFloat);
  const auto log_d = d.clamp_min(1e-6).log();
  torch::Tensor sum = torch::zeros({}, p.options()), pairs = torch::zeros({}, p.options());
  for (int dim : {2, 3}) {  // neighbours below, then to the right
    const int64_t len = p.size(dim);
    if (len < 2) continue;
    auto a = p.narrow(dim, 0, len - 1), b = p.narrow(dim, 1, len - 1);
    auto da = d.narrow(dim - 1, 0, len - 1), db = d.narrow(dim - 1, 1, len - 1);
    auto same_surface =
        da.gt(0)
            .logical_and(db.gt(0))
            .logical_and((log_d.narrow(dim - 1, 0, len - 1) - log_d.narrow(dim - 1, 1, len - 1)).abs().lt(edge))
            .to(torch::kFloat);
    sum = sum + (0.5 * (a - b).abs().sum(1) * same_surface).sum();
    pairs = pairs + same_surface.sum();
  }
  return sum / pairs.clamp_min(1);
}

}  // namespace cseg::adaptation
