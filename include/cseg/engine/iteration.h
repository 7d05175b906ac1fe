#pragma once
/// One training iteration of a continual step, and the model a step trains: what the trainer
/// runs for every batch, shared with the benchmarks that measure it (bench/continual_step.cpp).
#include <torch/torch.h>

#include <memory>
#include <vector>

#include "cseg/adaptation/step_adaptation.h"
#include "cseg/config/experiment.h"
#include "cseg/core/batch.h"
#include "cseg/core/grad_scaler.h"
#include "cseg/methods/method.h"
#include "cseg/scenarios/scenario.h"

namespace cseg::distributed {
class GradientAverager;
}

namespace cseg::engine {

/// Builds a model with the heads of steps 0..last_step of `scenario`, or of every step when
/// `all_heads` (a method that pre-allocates them, Method::preallocates_heads).
std::shared_ptr<models::Segmenter> build_model_for_step(const config::ExperimentConfig& cfg,
                                                        const scenarios::Scenario& scenario, int last_step,
                                                        bool all_heads = false);

/// Readies `model` for training step ctx.step: when `teacher` is asked for (and the step is not
/// the first), a frozen copy of the model as it ended the previous step is made first, readied
/// for inference with the method's feature taps (`features`); then the step's head is added if
/// the model lacks it (on `device`), the feature taps set and the layout made channels-last
/// (model.channels_last). Sets ctx.model and ctx.old_model; the returned teacher (null when none)
/// must outlive their use.
std::shared_ptr<models::Segmenter> ready_step_model(models::Segmenter& model, methods::StepContext& ctx, bool teacher,
                                                    bool features, const config::ModelConfig& cfg,
                                                    const torch::Device& device);

/// What one iteration gives back.
struct IterationResult {
  double loss = 0;           ///< the summed loss (read every iteration: on a GPU this waits for the work)
  methods::LossTerms terms;  ///< its named terms, for the logs
  bool applied = false;      ///< false: not finite, the optimizer did not step (see apply_update)
};

/// One iteration: the adaptation's batch preparation, the method's before_forward, the teacher's
/// forward pass without autograd (ctx.old_model, when set), the student's forward (under
/// train.precision's autocast), the loss terms (task loss on the labels, aux head, the
/// adaptation's terms, the method's), backward, gradient averaging between processes, the update
/// (apply_update) and the gradients released. The learning rate is the caller's to set.
///
/// References are held, not owned: everything passed in must outlive the object.
class TrainIteration {
 public:
  struct Options {
    core::GradScaler* scaler = nullptr;                 ///< fp16 loss scaling
    distributed::GradientAverager* averager = nullptr;  ///< data-parallel: averages gradients
    /// In a process group every process sees the same averaged gradients and decides from them
    /// alone whether to step; a single process also checks its own loss.
    bool in_process_group = false;
  };
  TrainIteration(const config::ExperimentConfig& cfg, models::Segmenter& model, methods::Method& method,
                 adaptation::StepAdaptation& adaptation, torch::optim::Optimizer& optimizer, Options options);
  /// Trains on `batch` (the method and the adaptation may change it: replayed samples, labels).
  IterationResult run(methods::StepContext& ctx, Batch& batch);
  /// The tensors the optimizer updates: the model's parameters and the method's own.
  const std::vector<torch::Tensor>& trained() const { return trained_; }

 private:
  methods::LossTerms loss_terms(methods::StepContext& ctx, const Batch& batch, const models::ModelOutput& out);

  const config::ExperimentConfig& cfg_;
  models::Segmenter& model_;
  methods::Method& method_;
  adaptation::StepAdaptation& adaptation_;
  torch::optim::Optimizer& optimizer_;
  Options options_;
  bool cuda_;
  std::vector<torch::Tensor> trained_;
};

/// Drops the optimizer's gradients instead of zeroing them (PyTorch 2's zero_grad(set_to_none=
/// True)): backward then writes fresh ones, and the forward pass in between runs without a copy
/// of the weights' size held for them. After each optimizer step, and before a step's first.
void release_gradients(torch::optim::Optimizer& optimizer);

/// Turns one iteration's gradients into an update. With fp16 loss scaling (`scaler`) they are
/// unscaled first. An iteration whose gradients, or loss (`loss_finite`), are not finite is not
/// applied: the optimizer does not step and neither of the method's after_backward /
/// after_optimizer_step hooks runs (EWC, PI and RW would fold inf or NaN into their importance);
/// the scaler shrinks its scale. Returns whether the update was applied.
bool apply_update(methods::Method& method, methods::StepContext& ctx, torch::optim::Optimizer& optimizer,
                  core::GradScaler* scaler, const std::vector<torch::Tensor>& trained, bool loss_finite);

}  // namespace cseg::engine
