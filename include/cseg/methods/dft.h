#pragma once
/// DFT* (Zhang et al., "Revisiting Continual Semantic Segmentation with Pre-trained Vision
/// Models", 2025): direct fine-tuning with three changes that follow from their finding that a
/// pretrained network forgets little and the old classifiers drift:
///  - freeze_network: after step 0 the encoder and decoder stop training and run as at
///    evaluation (fixed normalisation statistics), as their --fix_bachbone freezes body and head;
///  - freeze_old_heads: after step 0 the classifiers of earlier steps stop training (--fix_pre_cls);
///  - preallocate: every step's classifier exists from step 0 and learns, as a negative, from
///    every step before its own (--pre_allocate); predictions use the classes seen so far.
/// The task loss is plain cross-entropy over every logit, pre-allocated ones included. Options:
/// method_options.dft_star.{freeze_network, freeze_old_heads, preallocate}, each true by default.
#include "cseg/methods/method.h"
#include "cseg/methods/options.h"

namespace cseg::methods {

class DFTStar : public Method {
 public:
  explicit DFTStar(Options options);
  std::string name() const override { return "dft_star"; }
  bool needs_features() const override { return false; }
  bool preallocates_heads() const override { return preallocate_; }
  void on_step_begin(StepContext& ctx) override;

 private:
  bool freeze_network_, freeze_old_heads_, preallocate_;
};

}  // namespace cseg::methods
