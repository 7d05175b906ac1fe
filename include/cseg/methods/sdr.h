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
///
/// `faithful` (a list of the names below, `all`, or `none`, the default) swaps in what the
/// reference code (LTTM/SDR train.py, utils/loss.py, with its SDR settings) computes instead
/// (docs/methods.md):
///  - gather: a class's features taken as masked_select(...).view(D, n) (prototype update,
///    attraction, class means) and .view(n, D) (matching): channels mix when a batch has more
///    than one image (matching: at any batch size);
///  - classes: the prototype update skips the first label present in overlap mode, and in
///    disjoint mode after step 0, whatever it is (so background gets a prototype at step 0 of
///    disjoint and sequential runs); attraction and repulsion include background; matching uses
///    every old class it locates, with or without a prototype, located by the labels in
///    sequential mode;
///  - attraction_mean: per-class MSEs added one by one, the running sum divided by the class
///    count after each addition (cseg: one MSE over all labelled pixels);
///  - repulsion: among the batch's class means only, 1 / distance without epsilon, infinite
///    values dropped, 0 when none is left;
///  - sparsity: every label present normalised (background and ignored pixels too, unless the
///    batch is only background), the ratio averaged over all pixels;
///  - steps: attraction and repulsion only at steps > 0 (prototypes are still updated at step 0);
///  - head_init: new heads keep their random initialisation (the code's SDR leaves MiB's
///    background-based initialisation off).
#include <vector>

#include "cseg/methods/method.h"
#include "cseg/methods/options.h"
#include "cseg/scenarios/scenario.h"

namespace cseg::methods {

class SDR : public Method {
 public:
  struct Faithful {
    bool gather = false, classes = false, attraction_mean = false, repulsion = false, sparsity = false, steps = false,
         head_init = false;
  };
  static std::vector<std::string> faithful_names() {
    return {"gather", "classes", "attraction_mean", "repulsion", "sparsity", "steps", "head_init"};
  }

  explicit SDR(Options o);
  std::string name() const override { return "sdr"; }
  bool needs_old_model() const override { return true; }
  void on_step_begin(StepContext&) override;
  torch::Tensor task_loss(StepContext&, const Batch&, const models::ModelOutput& out) override;
  void add_loss_terms(StepContext&, const Batch&, const models::ModelOutput&, LossTerms&) override;
  void save(torch::serialize::OutputArchive&) const override;
  void load(torch::serialize::InputArchive&) override;
  const Faithful& faithful() const { return faithful_; }

  /// Per-class sums and counts of the features of the labelled pixels: ([K, D], [K]) for labels
  /// 1..K-1 (0 and 255 skipped), K = num_classes (exposed for tests).
  static std::pair<torch::Tensor, torch::Tensor> class_sums(const torch::Tensor& features, const torch::Tensor& labels,
                                                            int num_classes);
  const torch::Tensor& prototypes() const { return prototypes_; }
  const torch::Tensor& counts() const { return counts_; }

  // The computations the `faithful` switches choose between, unweighted (exposed for tests).
  // `features` [N, D, h, w]; `labels` [N, h, w] at the features' resolution.

  /// [D, n]: the features of the n pixels where `mask` [N, h, w] holds, a row per channel; `mixed`:
  /// the reference's masked_select(...).view(D, n), whose rows are runs of batch-major values.
  static torch::Tensor class_features(const torch::Tensor& features, const torch::Tensor& mask, bool mixed);
  /// The classes whose prototypes a batch updates: its foreground labels below num_classes, or
  /// (`reference`) the code's choice by mode and step.
  static std::vector<int64_t> prototype_classes(const torch::Tensor& labels, int num_classes, scenarios::Mode mode,
                                                int step, bool reference);
  /// Running means: each class's features are added to prototypes/counts (no gradient).
  static void update_prototypes(torch::Tensor& prototypes, torch::Tensor& counts, const torch::Tensor& features,
                                const torch::Tensor& labels, const std::vector<int64_t>& classes, bool mixed);
  /// Attraction and repulsion by the class loop (used when gather, classes or attraction_mean is
  /// on; cseg's own computation without them is add_loss_terms' vectorised one).
  static std::pair<torch::Tensor, torch::Tensor> clustering(const torch::Tensor& features, const torch::Tensor& labels,
                                                            const torch::Tensor& prototypes,
                                                            const torch::Tensor& counts, const Faithful& faithful);
  /// Sparsification; `reference`: the code's class set and pixel mean.
  static torch::Tensor sparsity(const torch::Tensor& features, const torch::Tensor& labels, int num_classes,
                                bool reference);
  /// Prototype matching on `located` [N, h, w] (old classes where they are found, 0 elsewhere).
  static torch::Tensor matching(const torch::Tensor& features, const torch::Tensor& located,
                                const torch::Tensor& prototypes, const torch::Tensor& counts, int num_old_classes,
                                const Faithful& faithful);

 private:
  double kd_weight_, matching_weight_, attraction_weight_, repulsion_weight_, sparsity_weight_;
  Faithful faithful_;
  torch::Tensor prototypes_;  ///< [K, D] running means (rows of unseen classes are 0)
  torch::Tensor counts_;      ///< [K] pixels accumulated per class
};

}  // namespace cseg::methods
