#pragma once
/// The continual-learning method interface (Avalanche-style hooks, kept narrow). The trainer
/// owns the loop and calls these hooks; a method overrides only what it needs.
///
/// Per step:   on_step_begin
///   per batch:  before_forward -> (forward; the old model's forward) -> task_loss
///               + add_loss_terms -> (backward) -> after_backward -> (optimizer step)
///               -> after_optimizer_step
///             on_step_end
/// save/load carry the method's state in every checkpoint so a resumed run continues exactly.
#include <torch/torch.h>

#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "cseg/config/experiment.h"
#include "cseg/core/batch.h"
#include "cseg/models/predictions.h"
#include "cseg/models/segmenter.h"

namespace cseg::scenarios {
class Scenario;
}

namespace cseg::methods {

/// What a hook may look at and change during a step.
struct StepContext {
  int step = 0;
  int num_old_classes = 0;  ///< classes before this step (0 at step 0)
  int num_classes = 0;      ///< classes after this step
  /// The first label this step's data teaches: num_old_classes in class-incremental scenarios,
  /// 0 in domain-incremental ones (a new environment shows every class again).
  int first_new_label = 0;
  int64_t iteration = 0;             ///< iterations done in this step
  int64_t total_iterations = 0;      ///< the step's budget
  int64_t iterations_per_epoch = 0;  ///< batches in one pass over the step's data
  int epoch = 0;
  /// False for an unlabelled environment of a domain-incremental scenario: the batches' labels
  /// are the adaptation plugin's pseudo-labels (adaptation/step_adaptation.h), not annotations.
  bool labelled = true;
  models::Segmenter* model = nullptr;
  const scenarios::Scenario* scenario = nullptr;
  const config::ExperimentConfig* config = nullptr;
  /// The model as it ended the previous step: a frozen copy in eval mode without gradients,
  /// made only at steps > 0 for methods that ask (needs_old_model) and for unlabelled steps (the
  /// adaptation plugin's teacher). Owned by the trainer for the step; all of these pointers are
  /// valid until on_step_end returns (docs/architecture.md, "Ownership").
  models::Segmenter* old_model = nullptr;
  /// The old model's output on the current batch, computed once per batch without autograd
  /// (set between before_forward and task_loss).
  const models::ModelOutput* old_output = nullptr;
  /// Runs `fn` over one pass of this step's training data (training augmentation, a seed of its
  /// own so the training order is unchanged): for statistics such as PLOP's entropy thresholds.
  std::function<void(const std::function<void(const Batch&)>&)> visit_train_data;
};

/// Named loss terms: each is logged under its name; the trainer sums them.
using LossTerms = std::vector<std::pair<std::string, torch::Tensor>>;

/// Which data a step trains on.
enum class DataPolicy {
  CurrentStep,  ///< the step's images with the protocol's labels (the continual setting)
  Cumulative,   ///< every image seen so far with all seen labels (joint training)
};

class Method {
 public:
  virtual ~Method() = default;
  virtual std::string name() const = 0;
  virtual DataPolicy data_policy() const { return DataPolicy::CurrentStep; }
  /// True: the trainer keeps the previous step's model as a teacher (StepContext::old_model).
  virtual bool needs_old_model() const { return false; }
  /// True: the method's step 0 is fine-tuning (same loss, no state that its on_step_end cannot
  /// rebuild from the trained model and the step's data), so it may take its step-0 model from
  /// an identical run of another such method (train.shared_step0) instead of training it.
  virtual bool first_step_is_finetuning() const { return false; }
  /// True: the model has every step's classifier head from step 0 on (DFT*'s pre-allocation);
  /// evaluation and predictions use the logits of the classes seen so far.
  virtual bool preallocates_heads() const { return false; }

  virtual void on_step_begin(StepContext&) {}
  virtual void before_forward(StepContext&, Batch&) {}
  /// The supervised loss on the batch's labels; default: the configured segmentation loss on
  /// out.logits.
  virtual torch::Tensor task_loss(StepContext& ctx, const Batch& batch, const models::ModelOutput& out);
  /// The name the task loss is logged under when the method replaces the configured loss
  /// (empty: the configured loss's name).
  virtual std::string task_loss_name() const { return ""; }
  /// Whether task_loss reads the batch's labels. If it does, a batch whose pixels are all ignored
  /// (no confident pseudo-label) has no task loss; TENT's entropy needs none.
  virtual bool task_loss_needs_labels() const { return true; }
  /// Extra terms (distillation, regularisers).
  virtual void add_loss_terms(StepContext&, const Batch&, const models::ModelOutput&, LossTerms&) {}
  virtual void after_backward(StepContext&) {}
  virtual void after_optimizer_step(StepContext&) {}
  virtual void on_step_end(StepContext&) {}
  /// Parameters the method owns and trains with the model (e.g. SSUL's unknown head); they join
  /// the decoder's parameter groups. Called when a step's optimizer is built.
  virtual std::vector<torch::Tensor> parameters() { return {}; }
  /// Whether the step's batches must carry saliency maps (Batch::saliency).
  virtual bool needs_saliency() const { return false; }
  /// Whether the method reads intermediate maps (ModelOutput::features) of the model or its
  /// teacher. Without them the models keep no taps while training: less memory (ResNet
  /// activations then run in place).
  virtual bool needs_features() const { return true; }
  /// Labels [N, H, W] from a model output at evaluation; default: argmax of the logits.
  virtual torch::Tensor predict(const models::ModelOutput& out) { return models::predicted_classes(out.logits); }
  /// Method-specific figures for results.json after a step (e.g. replay buffer bytes).
  virtual nlohmann::json stats() const { return nlohmann::json::object(); }
  virtual void save(torch::serialize::OutputArchive&) const {}
  virtual void load(torch::serialize::InputArchive&) {}
};

/// Fine-tuning: plain training on each step's data. The lower bound.
class FineTune : public Method {
 public:
  bool first_step_is_finetuning() const override { return true; }
  std::string name() const override { return "finetune"; }
  bool needs_features() const override { return false; }
};

/// Joint training: at each step, all data seen so far with all seen labels. The upper bound;
/// at the last step it equals offline training on the whole dataset.
class Joint : public Method {
 public:
  bool first_step_is_finetuning() const override { return true; }
  std::string name() const override { return "joint"; }
  DataPolicy data_policy() const override { return DataPolicy::Cumulative; }
  bool needs_features() const override { return false; }
};

/// The method registry: an explicit table (no self-registering statics). `options` are the
/// method's `method_options` from the config; unknown keys throw.
std::unique_ptr<Method> make_method(const std::string& name, const std::map<std::string, std::string>& options = {});
/// The methods that apply to domain-incremental scenarios (fixed label space).
std::vector<std::string> domain_method_names();
std::vector<std::string> method_names();

}  // namespace cseg::methods
