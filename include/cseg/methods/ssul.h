#pragma once
/// SSUL (Cha et al., NeurIPS 2021): an "unknown" class carved out of the background by saliency
/// maps, per-class binary cross-entropy, and a frozen network at later steps.
///  - The unknown class is a 1x1 head on the model's "decoder" tap that the method owns (trained
///    with the model, saved in the checkpoint); at evaluation a pixel whose highest score is
///    the unknown class counts as background (Method::predict).
///  - Targets: one-hot over the model's classes + unknown; background pixels with saliency > 0
///    become unknown; at steps > 0 background pixels where the old model's sigmoid score of an
///    old class is >= pseudo_threshold (0.7) take that class. Loss: binary cross-entropy with
///    logits over every channel, averaged over labelled pixels and channels.
///  - At steps > 0 everything but the heads is frozen (encoder and decoder take no gradient),
///    the old heads too, except the background row of the first head, whose gradient is scaled
///    by bg_lr_mult (1e-4); new heads start as copies of the unknown head.
///  Not implemented: SSUL-M's exemplar memory (use `replay` for rehearsal); BatchNorm statistics
///  of the frozen layers still update in training mode (SSUL keeps them fixed).
#include "cseg/methods/decoder_head.h"
#include "cseg/methods/method.h"
#include "cseg/methods/options.h"

namespace cseg::methods {

class SSUL : public Method {
 public:
  explicit SSUL(Options o);
  std::string name() const override { return "ssul"; }
  bool needs_old_model() const override { return true; }
  bool needs_saliency() const override { return true; }
  std::vector<torch::Tensor> parameters() override;
  void on_step_begin(StepContext&) override;
  torch::Tensor task_loss(StepContext&, const Batch&, const models::ModelOutput& out) override;
  std::string task_loss_name() const override { return "bce"; }
  void after_backward(StepContext&) override;
  torch::Tensor predict(const models::ModelOutput& out) override;
  void save(torch::serialize::OutputArchive&) const override;
  void load(torch::serialize::InputArchive&) override;

  /// The one-hot targets [N, C + 1, H, W] and the valid-pixel mask [N, H, W] (exposed for tests).
  static std::pair<torch::Tensor, torch::Tensor> targets(const torch::Tensor& labels, const torch::Tensor& saliency,
                                                         const torch::Tensor& old_logits, int num_classes,
                                                         double pseudo_threshold);

 private:
  torch::Tensor unknown_logits(const models::ModelOutput& out);
  double pseudo_threshold_, bg_lr_mult_;
  DecoderHead unknown_;  ///< the unknown class's head
};

}  // namespace cseg::methods
