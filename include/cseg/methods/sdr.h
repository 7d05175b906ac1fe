#pragma once
/// SDR (Michieli & Zanuttigh 2021): continual learning through sparse and disentangled latent
/// representations, on top of MiB's unbiased cross-entropy and distillation (kd_weight 100).
/// On the encoder output ("encoder" tap), with labels nearest-downsampled to it:
///  - prototypes: per-class running mean of the features of its pixels (all the step's pixels,
///    every image of the batch: the reference's means are right only for batch size 1);
///    kept across steps and in the checkpoint;
///  - prototype matching (matching_weight 0.01): at steps > 0, for each old class located by the
///    old model's argmax on background pixels, MSE between the current model's mean feature of
///    those pixels and the class prototype, averaged over classes;
///  - attraction (attraction_weight 1e-3): MSE between the features of each labelled foreground
///    class and its prototype;
///  - repulsion (repulsion_weight 1e-3): mean of 1 / distance between the batch's class means and
///    the other classes' means and prototypes;
///  - sparsification (sparsity_weight 1e-3): features of each class divided by their maximum,
///    mean over pixels of sum_d exp(f_d) / (sum_d f_d + 1e-15).
#include "cseg/methods/method.h"
#include "cseg/methods/options.h"

namespace cseg::methods {

class SDR : public Method {
 public:
  explicit SDR(Options o);
  std::string name() const override { return "sdr"; }
  bool needs_old_model() const override { return true; }
  void on_step_begin(StepContext&) override;
  torch::Tensor task_loss(StepContext&, const Batch&, const models::ModelOutput& out) override;
  void add_loss_terms(StepContext&, const Batch&, const models::ModelOutput&, LossTerms&) override;
  void save(torch::serialize::OutputArchive&) const override;
  void load(torch::serialize::InputArchive&) override;

  /// Per-class sums and counts of the features of the labelled pixels: ([K, D], [K]) for labels
  /// 1..K-1 (0 and 255 skipped), K = num_classes (exposed for tests).
  static std::pair<torch::Tensor, torch::Tensor> class_sums(const torch::Tensor& features, const torch::Tensor& labels,
                                                             int num_classes);
  const torch::Tensor& prototypes() const { return prototypes_; }
  const torch::Tensor& counts() const { return counts_; }

 private:
  double kd_weight_, matching_weight_, attraction_weight_, repulsion_weight_, sparsity_weight_;
  torch::Tensor prototypes_;  ///< [K, D] running means (rows of unseen classes are 0)
  torch::Tensor counts_;      ///< [K] pixels accumulated per class
};

}  // namespace cseg::methods
