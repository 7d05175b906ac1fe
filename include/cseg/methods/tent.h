#pragma once
/// TENT (Wang et al., "Tent: Fully Test-Time Adaptation by Entropy Minimization", ICLR 2021) as a
/// method of domain-incremental scenarios, the unlabelled-adaptation baseline a user would try
/// first. On an unlabelled environment's step it minimises the mean entropy of the model's
/// per-pixel class distribution (the step's pseudo-labels are not used) and trains only the
/// affine parameters (scale and shift) of the BatchNorm layers, which normalise with the batch's
/// statistics and update their running ones, as the paper's `configure_model` sets it up. Every
/// pixel of the crop counts, padding included (a batch does not mark it). On a labelled step
/// (the known rooms) it is fine-tuning. No options: the learning rate and budget are the
/// experiment's (the paper adapts with SGD or Adam at a small learning rate, one pass).
#include "cseg/methods/method.h"
#include "cseg/methods/options.h"

namespace cseg::methods {

class Tent : public Method {
 public:
  explicit Tent(Options options);
  std::string name() const override { return "tent"; }
  bool needs_features() const override { return false; }
  void on_step_begin(StepContext& ctx) override;
  torch::Tensor task_loss(StepContext& ctx, const Batch& batch, const models::ModelOutput& out) override;
  std::string task_loss_name() const override { return adapting_ ? "entropy" : ""; }
  bool task_loss_needs_labels() const override { return !adapting_; }
  void on_step_end(StepContext& ctx) override;

  /// Mean over pixels of the Shannon entropy (nats) of softmax(logits) over the class channel;
  /// logits [N, C, H, W].
  static torch::Tensor mean_entropy(const torch::Tensor& logits);
  /// Makes only the BatchNorm layers' weight and bias take gradients; returns how many tensors.
  static int train_only_norm_affine(models::Segmenter& model);

 private:
  bool adapting_ = false;  ///< the current step is an unlabelled environment's
};

}  // namespace cseg::methods
