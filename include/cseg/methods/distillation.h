#pragma once
/// Methods that learn new classes while distilling the previous step's model (the teacher the
/// trainer keeps in StepContext::old_model): LwF, LwF-MC, ILT, MiB and PLOP. Constants default
/// to the papers' (docs/methods.md lists them); each is a `method_options` key.
#include <array>
#include <string>
#include <vector>

#include "cseg/methods/method.h"
#include "cseg/methods/options.h"

namespace cseg::methods {

/// MiB's initialisation of the newest head: every new class copies the background's weights and
/// bias - log(N_new + 1), and the background's bias drops by the same amount, so background and
/// the N_new new classes split the old background probability evenly. Applied to the main and
/// auxiliary heads (Segmenter::head_aliases).
void init_new_head_from_background(models::Segmenter& model);

/// LwF (Li & Hoiem): cross-entropy + kd_weight (100) * lwf_kd on the logits.
class LwF : public Method {
 public:
  explicit LwF(Options o);
  std::string name() const override { return "lwf"; }
  bool first_step_is_finetuning() const override { return true; }  // no teacher at step 0
  bool needs_old_model() const override { return true; }
  bool needs_features() const override { return false; }  // logits only
  void add_loss_terms(StepContext&, const Batch&, const models::ModelOutput&, LossTerms&) override;

 private:
  double kd_weight_;
};

/// LwF-MC (iCaRL's loss): one-hot BCE + kd_weight (10) * C_old * sigmoid_kd.
class LwFMC : public Method {
 public:
  explicit LwFMC(Options o);
  std::string name() const override { return "lwf_mc"; }
  bool needs_old_model() const override { return true; }
  bool needs_features() const override { return false; }  // logits only
  torch::Tensor task_loss(StepContext&, const Batch&, const models::ModelOutput& out) override;
  std::string task_loss_name() const override { return "bce"; }
  void add_loss_terms(StepContext&, const Batch&, const models::ModelOutput&, LossTerms&) override;

 private:
  double kd_weight_;
};

/// ILT (Michieli & Zanuttigh): LwF's kd (kd_weight 100) + feature_weight (100) * MSE between
/// the encoder outputs of the new and the old model.
class ILT : public Method {
 public:
  explicit ILT(Options o);
  std::string name() const override { return "ilt"; }
  bool first_step_is_finetuning() const override { return true; }  // no teacher at step 0
  bool needs_old_model() const override { return true; }
  void add_loss_terms(StepContext&, const Batch&, const models::ModelOutput&, LossTerms&) override;

 private:
  double kd_weight_, feature_weight_;
};

/// MiB (Cermelli et al. 2020): unbiased cross-entropy, unbiased distillation (kd_weight 10; the
/// authors use 100 for 15-1), and the background-based initialisation of new heads (init).
class MiB : public Method {
 public:
  explicit MiB(Options o);
  std::string name() const override { return "mib"; }
  bool first_step_is_finetuning() const override { return true; }  // no teacher at step 0
  bool needs_old_model() const override { return true; }
  bool needs_features() const override { return false; }  // logits only
  void on_step_begin(StepContext&) override;
  torch::Tensor task_loss(StepContext&, const Batch&, const models::ModelOutput& out) override;
  void add_loss_terms(StepContext&, const Batch&, const models::ModelOutput&, LossTerms&) override;

 private:
  double kd_weight_;
  bool init_;
};

/// PLOP (Douillard et al. 2021): local POD on the stage taps and the low-resolution logits
/// (pod_weight 0.01, pod_logits_weight 0.0005, times sqrt(C_all / C_new), mean over the maps);
/// pseudo-labels on background pixels from the old model where its normalised entropy is below
/// the per-class threshold (the median over the step's background training pixels it predicts
/// as that class, as in the reference, at least threshold_min 0.001; computed with a 1000-bin
/// histogram, i.e. the correct median to within 0.001); per-image adaptive factor on the CE;
/// MiB's head initialisation.
///
/// `faithful` (a list of the names below, `all`, or `none`, the default) swaps in the reference
/// code's own computation where it differs from the paper's description (docs/methods.md):
///  - entropy: the class *mean* of -p log(p + 1e-8), divided by log C_old and again by log C_all
///    (C_old * log C_all times smaller than H / log C_old);
///  - median: its running-sum median over 100 bins (the sum adds each bin's position, not its
///    count; a non-finite result is kept, as there, and logged);
///  - ce_mean: the cross-entropy averaged over all pixels, ignored ones included;
///  - pod_regions: POD regions as squares of side W / s (PodRegions::reference).
class PLOP : public Method {
 public:
  struct Faithful {
    bool entropy = false, median = false, ce_mean = false, pod_regions = false;
  };
  static std::vector<std::string> faithful_names() { return {"entropy", "median", "ce_mean", "pod_regions"}; }

  explicit PLOP(Options o);
  std::string name() const override { return "plop"; }
  bool first_step_is_finetuning() const override { return true; }  // no teacher at step 0
  bool needs_old_model() const override { return true; }
  void on_step_begin(StepContext&) override;
  torch::Tensor task_loss(StepContext&, const Batch&, const models::ModelOutput& out) override;
  void add_loss_terms(StepContext&, const Batch&, const models::ModelOutput&, LossTerms&) override;
  void save(torch::serialize::OutputArchive&) const override;
  void load(torch::serialize::InputArchive&) override;
  /// Per old class (background included), the entropy threshold of the current step.
  const torch::Tensor& thresholds() const { return thresholds_; }
  const Faithful& faithful() const { return faithful_; }

  /// The old model's uncertainty per pixel [N, H, W] that pseudo-labels are cut on: H / log C_old
  /// in [0, 1], or the reference's (`reference`), C_all = num_classes after the step.
  static torch::Tensor entropy(const torch::Tensor& old_logits, int64_t num_classes, bool reference);
  /// Counts into `hist` [C_old, bins] the `entropy` [N, H, W] of every background pixel (label 0:
  /// where pseudo-labels go), in the row of the class the old model predicts there; bins of
  /// width 1 / bins from 0.
  static void add_to_entropy_histogram(torch::Tensor& hist, const torch::Tensor& labels,
                                       const torch::Tensor& old_logits, const torch::Tensor& entropy);
  /// Per class, the upper edge of the histogram bin that holds the median, at least
  /// `threshold_min` (also the threshold of a class never predicted).
  static torch::Tensor median_thresholds(const torch::Tensor& hist, double threshold_min);
  /// The reference's running-sum computation on the same histogram, to float precision (see
  /// distillation.cpp); may be +inf or NaN where it divides by an empty bin.
  static torch::Tensor reference_median_thresholds(const torch::Tensor& hist, double threshold_min);
  /// Labels with PLOP's pseudo-labels and the per-image adaptive factor (exposed for tests).
  static std::pair<torch::Tensor, torch::Tensor> pseudo_label(const torch::Tensor& labels,
                                                              const torch::Tensor& old_logits,
                                                              const torch::Tensor& entropy,
                                                              const torch::Tensor& thresholds);

 private:
  double pod_weight_, pod_logits_weight_, threshold_min_;
  bool pseudo_;
  Faithful faithful_;
  torch::Tensor thresholds_;
};

}  // namespace cseg::methods
