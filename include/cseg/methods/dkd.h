#pragma once
/// DKD (Baek et al., "Decomposed Knowledge Distillation for Class-Incremental Semantic
/// Segmentation", NeurIPS 2022): one binary classifier per class, and the old model's reasoning
/// distilled term by term rather than as one logit.
///  - Background is no class of its own: a pixel is background where no class's sigmoid score
///    reaches 0.5, else the class with the highest score (Method::predict). cseg's logit channel 0
///    (the background row of the first head) is neither trained nor read.
///  - mbce (task loss): binary cross-entropy of this step's classes against their one-hot labels,
///    positives weighted pos_weight (DKD's scripts: 2 at step 0, 1 later), averaged over pixels
///    per class and summed over classes. Labels 0 and 255 are negatives of every class, as in
///    DKD's code.
///  - kd (weight 5): the old classes' logits against the old model's sigmoid scores, binary
///    cross-entropy averaged over pixels per class, summed over classes (soft_bce).
///  - dkd_pos, dkd_neg (5 each): with f the classifier's input (the "decoder" tap) and w a class's
///    weights, the logit w·f + b splits into a positive part sum_k max(w_k, 0) f_k and a negative
///    part sum_k min(w_k, 0) f_k (decompose); each is distilled like kd, at the decoder's
///    resolution, so the old classes keep both the evidence for and against them.
///  - ac (1): an auxiliary one-channel classifier on the detached decoder tap learns that every
///    pixel is a negative; each later step's new heads start as copies of it, so new classes
///    begin knowing that the pixels seen so far are not theirs.
///  - From step 1 on, normalisation statistics stay fixed and dropout is off (DKD's --freeze_bn
///    and freeze_dropout); the layers' parameters still train.
/// Not reproduced: DKD-M's exemplar memory, and DKD's optimiser settings at later steps (learning
/// rate 1e-4, 10x for the decoder and heads, no weight decay), which are cseg's `train:` settings.
#include <utility>

#include "cseg/methods/decoder_head.h"
#include "cseg/methods/method.h"
#include "cseg/methods/options.h"

namespace cseg::methods {

class DKD : public Method {
 public:
  explicit DKD(Options options);
  std::string name() const override { return "dkd"; }
  bool needs_old_model() const override { return true; }
  std::vector<torch::Tensor> parameters() override { return {auxiliary_.weight, auxiliary_.bias}; }
  void on_step_begin(StepContext&) override;
  void before_forward(StepContext&, Batch&) override;
  torch::Tensor task_loss(StepContext&, const Batch&, const models::ModelOutput& out) override;
  std::string task_loss_name() const override { return "mbce"; }
  void add_loss_terms(StepContext&, const Batch&, const models::ModelOutput&, LossTerms&) override;
  torch::Tensor predict(const models::ModelOutput& out) override;
  void save(torch::serialize::OutputArchive& a) const override { auxiliary_.save(a, "auxiliary"); }
  void load(torch::serialize::InputArchive& a) override { auxiliary_.load(a, "auxiliary"); }

  // The pure parts, for tests. x: logits [N, C, H, W] with channel c = class c.
  /// Binary cross-entropy of x[:, first:] against one-hot targets (label == c; every other label
  /// is a negative), positives weighted `pos_weight`: mean over pixels per class, sum over classes.
  static torch::Tensor multilabel_bce(const torch::Tensor& x, const torch::Tensor& labels, int first,
                                      double pos_weight);
  /// Binary cross-entropy of x against sigmoid(x_old) (same shape): mean over pixels per class,
  /// sum over classes.
  static torch::Tensor soft_bce(const torch::Tensor& x, const torch::Tensor& x_old);
  /// The positive and negative parts [N, C, h, w] of a 1x1 classifier's logits without its bias:
  /// features [N, D, h, w], weight [C, D] (or [C, D, 1, 1]).
  static std::pair<torch::Tensor, torch::Tensor> decompose(const torch::Tensor& features, const torch::Tensor& weight);
  /// Labels [N, H, W]: argmax over channels 1.. of sigmoid(x), 0 where no score reaches 0.5.
  static torch::Tensor sigmoid_prediction(const torch::Tensor& x);
  /// The classifier weights [C, D] of every head of `model`'s main classifier, in class order.
  static torch::Tensor classifier_weight(models::Segmenter& model);

 private:
  double pos_weight_first_, pos_weight_, kd_weight_, dkd_pos_weight_, dkd_neg_weight_, ac_weight_;
  bool init_from_auxiliary_, freeze_norm_;
  DecoderHead auxiliary_;  ///< the auxiliary classifier (DKD's cls[0])
};

}  // namespace cseg::methods
