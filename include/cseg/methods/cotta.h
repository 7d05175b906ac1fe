#pragma once
/// CoTTA (Wang et al., "Continual Test-Time Domain Adaptation", CVPR 2022) as a method of
/// domain-incremental scenarios, the second unlabelled-adaptation baseline beside TENT. On an
/// unlabelled environment's step:
///  - a mean teacher: a copy of the model whose weights follow the student's by an exponential
///    moving average after every update (`ema`, 0.999), across environments;
///  - its predictions are the targets, averaged over augmented copies of the batch (each image
///    flipped at random, resized by `num_scales` factors evenly spaced from `min_scale` to
///    `max_scale`, the paper's 0.5, 0.75, ..., 1.75; the logits brought back) when the
///    source model (the anchor, as the first unlabelled step found it) is unsure, i.e. its mean
///    top softmax score is below `anchor_confidence` (0.9);
///  - the student (every parameter trainable) learns the teacher's soft targets by cross-entropy
///    (the step's pseudo-labels are not used);
///  - stochastic restore: after every update each weight element returns to its source value
///    with probability `restore` (0.01), so what the source knew is never lost entirely.
/// CoTTA predicts with the teacher: at the end of an unlabelled step the model takes the
/// teacher's weights (what is evaluated and checkpointed), and the student's are kept in the
/// method's state and put back at the next step's start. On a labelled step it is fine-tuning.
/// The copies run in training mode (batch statistics) as the student does. Deviations: the
/// scales are relative to the crop (the paper's segmentation runs resize from half the test size),
/// and the augmented logits are averaged at the crop's size.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cseg/methods/method.h"
#include "cseg/methods/options.h"
#include "cseg/methods/state_archive.h"

namespace cseg::methods {

class CoTTA : public Method {
 public:
  explicit CoTTA(Options options);
  std::string name() const override { return "cotta"; }
  bool needs_features() const override { return false; }
  void on_step_begin(StepContext& ctx) override;
  torch::Tensor task_loss(StepContext& ctx, const Batch& batch, const models::ModelOutput& out) override;
  std::string task_loss_name() const override { return adapting_ ? "cotta" : ""; }
  bool task_loss_needs_labels() const override { return !adapting_; }
  void after_optimizer_step(StepContext& ctx) override;
  void on_step_end(StepContext& ctx) override;
  nlohmann::json stats() const override;
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;

  /// Mean over pixels of -sum_c softmax(teacher)_c * log_softmax(student)_c; logits [N, C, H, W].
  static torch::Tensor soft_cross_entropy(const torch::Tensor& student, const torch::Tensor& teacher);
  /// teacher <- alpha * teacher + (1 - alpha) * student, tensor by tensor (same names).
  static void ema_update(const TensorMap& teacher, const TensorMap& student, double alpha);
  /// Each element of each tensor of `weights` takes its value in `source` with probability p.
  static void stochastic_restore(const TensorMap& weights, const TensorMap& source, double p);

 private:
  /// The teacher and the anchor as models, made from their saved weights when first needed (a
  /// new process, or a resumed step).
  void ready_copies(const models::Segmenter& model);
  /// The teacher's logits for `images`: on the batch, or averaged over flipped and resized copies.
  torch::Tensor teacher_logits(const torch::Tensor& images, int classes);

  double ema_, restore_, anchor_confidence_, min_scale_, max_scale_;
  int num_scales_;
  bool adapting_ = false;
  TensorMap source_;   ///< the anchor's parameters and buffers: the model as the first unlabelled step found it
  TensorMap teacher_;  ///< the teacher's, as of the last save or load (the model copy holds the live ones)
  TensorMap student_;  ///< between steps: the student's, put back at the next step's start
  std::shared_ptr<models::Segmenter> teacher_model_, anchor_model_;
  int64_t batches_ = 0, averaged_ = 0;  ///< this step: batches, and those whose targets were augmentation-averaged
};

}  // namespace cseg::methods
