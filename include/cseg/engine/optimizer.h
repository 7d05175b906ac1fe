#pragma once
/// The optimiser of a training run and of pretraining: SGD with momentum (the segmentation
/// papers' choice) over parameter groups that each have their own learning rate and weight
/// decay; the schedule changes each group's rate through set_group_lr. (AdamW was measured on the
/// embedded benchmark's recipe and did not help: docs/method_comparison.md.)
#include <torch/torch.h>

#include <memory>
#include <vector>

#include "cseg/config/experiment.h"

namespace cseg::engine {

struct ParamGroup {
  std::vector<torch::Tensor> params;
  double lr = 0;
  bool decay = true;  ///< false: no weight decay (biases, normalisation weights)
};

/// The optimiser over `groups` (empty groups are left out); `base_lrs` gets
/// each kept group's learning rate, in order.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const config::OptimConfig& o,
                                                        const std::vector<ParamGroup>& groups,
                                                        std::vector<double>& base_lrs);

/// Sets the learning rate of group `g`.
void set_group_lr(torch::optim::Optimizer& optimizer, size_t g, double lr);

}  // namespace cseg::engine
