#pragma once
/// Unlabelled adaptation as a plugin of a training step, composed with the method: the trainer
/// calls these hooks around the method's own (Method in methods/method.h) and never asks whether
/// the step is labelled. A labelled step gets the base class, whose hooks do nothing; an
/// unlabelled environment of a domain scenario gets self-training (make_step_adaptation).
///
/// Order within one iteration (engine/iteration.cpp):
///   prepare_batch -> method.before_forward -> teacher forward -> forward (the student's pass)
///   -> task loss and aux -> add_loss_terms -> method.add_loss_terms -> backward.
/// Lifetime: one object per step, made after the teacher (StepContext::old_model) exists and
/// used by the trainer's thread only; it keeps per-iteration state between prepare_batch and
/// add_loss_terms (the soft targets, the batch's own sample count).
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "cseg/config/experiment.h"
#include "cseg/core/batch.h"
#include "cseg/data/dataset.h"
#include "cseg/data/loader.h"
#include "cseg/methods/method.h"

namespace cseg::adaptation {

class StepAdaptation {
 public:
  virtual ~StepAdaptation() = default;
  /// True: the step needs the model as it ended the previous step (StepContext::old_model) as a
  /// teacher, whether or not the method asks for one.
  virtual bool needs_teacher() const { return false; }
  /// Before the loader is made (the teacher is ready): may replace the step's training dataset
  /// (labels computed on whole frames) and ask the loader for more per sample (the next frame
  /// and its flow, depth).
  virtual void prepare_data(const methods::StepContext& ctx, std::shared_ptr<const data::Dataset>& dataset,
                            data::LoaderOptions& loader) {}
  /// A training batch as the loader brought it, before the method's before_forward: its labels
  /// (the teacher's) and the student's view of its images.
  virtual void prepare_batch(const methods::StepContext& ctx, Batch& batch) {}
  /// A batch of the step's data that a method visits (StepContext::visit_train_data, e.g. to fill
  /// a replay buffer): given the labels training would use.
  virtual void label_visited(const methods::StepContext& ctx, Batch& batch) {}
  /// The student's forward pass over `images` through `forward` (the trainer's, in float).
  virtual models::ModelOutput forward(const methods::StepContext& ctx, const torch::Tensor& images,
                                      const std::function<models::ModelOutput(const torch::Tensor&)>& forward) {
    return forward(images);
  }
  /// Appends the adaptation's loss terms (they are summed with the task loss and the method's).
  virtual void add_loss_terms(const methods::StepContext& ctx, const Batch& batch, const models::ModelOutput& out,
                              methods::LossTerms& terms) {}
  /// How the step's labels were made, for results.json's "pseudo_labels" (null: nothing to say).
  virtual nlohmann::json stats() const { return nullptr; }
};

/// What self-training needs to know about the environment it adapts to.
struct Environment {
  std::string name;
  /// The training frames with their masks, read only to score the pseudo-labels
  /// (adaptation.score_pseudo_labels); never trained on.
  std::shared_ptr<const data::Dataset> with_masks;
};

/// The plugin of one step: self-training from the teacher's pseudo-labels with the cues that
/// `cfg.adaptation` turns on (temporal pseudo-labels, temporal and depth-edge consistency,
/// student relighting and scale, flip-averaged teacher) for an unlabelled environment; the
/// no-op base for a labelled step. `log_name` prefixes its log lines (the method's name).
std::unique_ptr<StepAdaptation> make_step_adaptation(const config::ExperimentConfig& cfg, bool labelled,
                                                     Environment environment, std::string log_name);

}  // namespace cseg::adaptation
