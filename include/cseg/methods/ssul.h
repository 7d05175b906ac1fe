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
///  - SSUL-M (`ssul-m`, or `memory` > 0): an exemplar memory of `memory` training crops (SSUL: 100
///    for VOC, 300 for ADE20K), class-balanced, filled at the end of each step from its crops and
///    their labels (the shared ReplayBuffer); at later steps half of every batch (random
///    positions) is replaced by stored crops, which get the old model's pseudo-labels like the
///    rest but no unknown class (as in SSUL, whose memory images skip the saliency step). Unlike
///    SSUL, whose memory images carry the ground truth of every class seen so far, a stored crop
///    keeps the labels its own step had (other classes reach it only as pseudo-labels).
///  BatchNorm statistics of the frozen layers still update in training mode (SSUL keeps them fixed).
#include <memory>

#include "cseg/methods/decoder_head.h"
#include "cseg/methods/method.h"
#include "cseg/methods/options.h"
#include "cseg/methods/rehearsal.h"

namespace cseg::methods {

class SSUL : public Method {
 public:
  /// `default_memory`: the exemplar memory when the options do not set one (0 = SSUL, no memory).
  explicit SSUL(Options o, int default_memory = 0);
  std::string name() const override { return name_; }
  bool needs_old_model() const override { return true; }
  bool needs_saliency() const override { return true; }
  std::vector<torch::Tensor> parameters() override;
  void on_step_begin(StepContext&) override;
  torch::Tensor task_loss(StepContext&, const Batch&, const models::ModelOutput& out) override;
  std::string task_loss_name() const override { return "bce"; }
  void before_forward(StepContext&, Batch&) override;
  void after_backward(StepContext&) override;
  void on_step_end(StepContext&) override;
  nlohmann::json stats() const override;
  torch::Tensor predict(const models::ModelOutput& out) override;
  void save(torch::serialize::OutputArchive&) const override;
  void load(torch::serialize::InputArchive&) override;
  /// SSUL-M's memory (null for SSUL), for tests.
  const ReplayBuffer* memory() const { return memory_ ? &memory_->buffer() : nullptr; }

  /// The one-hot targets [N, C + 1, H, W] and the valid-pixel mask [N, H, W] (exposed for tests).
  static std::pair<torch::Tensor, torch::Tensor> targets(const torch::Tensor& labels, const torch::Tensor& saliency,
                                                         const torch::Tensor& old_logits, int num_classes,
                                                         double pseudo_threshold);

 private:
  torch::Tensor unknown_logits(const models::ModelOutput& out);
  std::string name_;
  double pseudo_threshold_, bg_lr_mult_;
  DecoderHead unknown_;                ///< the unknown class's head
  std::unique_ptr<Rehearsal> memory_;  ///< SSUL-M's exemplar memory (its buffer and filling); null without
};

}  // namespace cseg::methods
