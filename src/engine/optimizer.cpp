#include "cseg/engine/optimizer.h"

#include "cseg/core/error.h"

namespace cseg::engine {

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const config::OptimConfig& o,
                                                        const std::vector<ParamGroup>& groups,
                                                        std::vector<double>& base_lrs) {
  std::vector<torch::optim::OptimizerParamGroup> param_groups;
  base_lrs.clear();
  for (const auto& g : groups) {
    if (g.params.empty()) continue;
    const double wd = g.decay ? o.weight_decay : 0.0;
    auto opts = std::make_unique<torch::optim::SGDOptions>(g.lr);
    opts->momentum(o.momentum).nesterov(o.nesterov).weight_decay(wd);
    param_groups.emplace_back(g.params, std::move(opts));
    base_lrs.push_back(g.lr);
  }
  const double lr = base_lrs.empty() ? o.lr : base_lrs.front();
  return std::make_unique<torch::optim::SGD>(param_groups, torch::optim::SGDOptions(lr));
}

void set_group_lr(torch::optim::Optimizer& optimizer, size_t g, double lr) {
  optimizer.param_groups().at(g).options().set_lr(lr);
}

}  // namespace cseg::engine
