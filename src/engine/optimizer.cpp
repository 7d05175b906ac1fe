#include "cseg/engine/optimizer.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "cseg/core/error.h"
#include "cseg/models/segmenter.h"

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

std::unique_ptr<torch::optim::Optimizer> make_step_optimizer(models::Segmenter& model, const config::OptimConfig& o,
                                                             double lr, std::vector<double>& base_lrs,
                                                             const std::vector<torch::Tensor>& method_params) {
  std::set<const void*> encoder;
  for (auto& p : model.encoder_parameters()) encoder.insert(p.unsafeGetTensorImpl());
  std::vector<ParamGroup> groups(4);  // enc-decay, enc-no-decay, dec-decay, dec-no-decay
  for (auto& p : model.parameters()) {
    if (!p.requires_grad()) continue;
    const bool enc = encoder.count(p.unsafeGetTensorImpl()) > 0;
    const bool no_decay = p.dim() <= 1;
    groups[(enc ? 0 : 2) + (no_decay ? 1 : 0)].params.push_back(p);
  }
  for (const auto& p : method_params)
    if (p.requires_grad()) groups[2 + (p.dim() <= 1 ? 1 : 0)].params.push_back(p);
  for (int g = 0; g < 4; ++g) {
    groups[g].lr = g < 2 ? lr : lr * o.head_lr_mult;
    groups[g].decay = g % 2 == 0;
  }
  return make_optimizer(o, groups, base_lrs);
}

double step_learning_rate(const config::OptimConfig& o, int step) {
  return (step > 0 && o.lr_next > 0) ? o.lr_next : o.lr;
}

double lr_factor(const config::OptimConfig& o, int64_t it, int64_t total) {
  double f = 1.0;
  if (o.schedule == "poly") f = std::pow(1.0 - double(it) / double(std::max<int64_t>(1, total)), o.power);
  if (o.warmup_iters > 0 && it < o.warmup_iters) f *= double(it + 1) / o.warmup_iters;
  return f;
}

int64_t step_iterations(const config::TrainConfig& t, int step, int new_classes, int64_t per_epoch) {
  int64_t total = t.iterations > 0        ? t.iterations
                  : t.steps_per_class > 0 ? int64_t(t.steps_per_class) * new_classes
                                          : int64_t(t.epochs) * per_epoch;
  if (step == 0) total = std::max<int64_t>(1, std::llround(double(total) * t.first_step_factor));
  if (t.debug) total = std::min<int64_t>(total, t.debug_iterations);
  return total;
}

}  // namespace cseg::engine
