#include "cseg/core/grad_scaler.h"

namespace cseg::core {

bool GradScaler::unscale(const std::vector<torch::Tensor>& params) const {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> flags;
  for (const auto& p : params) {
    if (!p.grad().defined()) continue;
    auto g = p.mutable_grad();
    g.mul_(1.0 / scale_);
    flags.push_back(torch::isfinite(g).all());
  }
  // One synchronisation for all parameters, not one per tensor.
  return flags.empty() || torch::stack(flags).all().item<bool>();
}

void GradScaler::update(bool finite) {
  if (!finite) {
    scale_ *= o_.backoff_factor;
    good_steps_ = 0;
    ++skipped_;
    return;
  }
  if (++good_steps_ >= o_.growth_interval) {
    scale_ *= o_.growth_factor;
    good_steps_ = 0;
  }
}

}  // namespace cseg::core
