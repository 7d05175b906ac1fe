#pragma once
/// The optimiser of a training run and of pretraining, and its schedule: SGD with momentum (the
/// segmentation papers' choice) over parameter groups that each have their own learning rate and
/// weight decay; the schedule (lr_factor) changes each group's rate through set_group_lr; a
/// step's budget in iterations (step_iterations). (AdamW was measured on the
/// embedded benchmark's recipe and did not help: docs/method_comparison.md.)
#include <torch/torch.h>

#include <memory>
#include <vector>

#include "cseg/config/experiment.h"

namespace cseg::models {
class Segmenter;
}

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

/// The optimiser of one continual step over four parameter groups: encoder/decoder x with/without
/// weight decay (biases and normalisation weights, the 1-d tensors, get none). The decoder's
/// groups, and a method's own trainable tensors (`method_params`), learn at lr x head_lr_mult.
std::unique_ptr<torch::optim::Optimizer> make_step_optimizer(models::Segmenter& model, const config::OptimConfig& o,
                                                             double lr, std::vector<double>& base_lrs,
                                                             const std::vector<torch::Tensor>& method_params);

/// Step k's base learning rate: optim.lr, or optim.lr_next after step 0 when it is set.
double step_learning_rate(const config::OptimConfig& o, int step);

/// The schedule at iteration `it` of `total`, as a factor of the base rate: poly decay
/// (1 - it/total)^power (schedule: poly), times a linear warm-up over optim.warmup_iters.
double lr_factor(const config::OptimConfig& o, int64_t it, int64_t total);

/// Iterations step k trains: train.iterations, else steps_per_class x the step's `new_classes`,
/// else epochs x `per_epoch` batches; step 0's scaled by first_step_factor; at most
/// debug_iterations with train.debug.
int64_t step_iterations(const config::TrainConfig& t, int step, int new_classes, int64_t per_epoch);

}  // namespace cseg::engine
