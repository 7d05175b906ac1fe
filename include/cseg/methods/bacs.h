#pragma once
/// BACS (background-aware continual semantic segmentation, the seed project's method).
///  - Foreground prototypes: per step, the running mean of the decoder features ("decoder" tap)
///    of its foreground pixels; kept across steps and in the checkpoint.
///  - Background detector (owned by the method, trained with the model): for a prototype p,
///    |sigmoid(f) - sigmoid(p)| -> 1x1 conv -> upsampled -> sigmoid = probability that a pixel is
///    a seen foreground. Trained on the current step with focal loss (foreground 1, background
///    0) against the current step's prototype, weighted max(0, 1 - exp(epoch - max_epochs)), so
///    it stops learning by the last epoch. At later steps its prediction w is the maximum over
///    the old steps' prototypes.
///  - Background-aware CE (steps > 0): background pixels weigh (1 - w)^gamma, with w > 0.5 set
///    to 1 (gamma 2): background that looks like an old class is not pushed to background.
///  - Masked feature distillation (feature_weight 0.25): MSE between the new and old decoder
///    features on background pixels the detector calls seen.
///  - DER++ on a replay buffer (alpha 0.8, beta 0.5; memory, policy, selection as `der++`, but the
///    policy defaults to BACS's own filling, importance_reservoir).
#include <memory>

#include "cseg/methods/decoder_head.h"
#include "cseg/methods/method.h"
#include "cseg/methods/options.h"
#include "cseg/methods/rehearsal.h"

namespace cseg::methods {

class BACS : public Method {
 public:
  explicit BACS(Options o);
  std::string name() const override { return "bacs"; }
  bool needs_old_model() const override { return true; }
  std::vector<torch::Tensor> parameters() override;
  void on_step_begin(StepContext&) override;
  torch::Tensor task_loss(StepContext&, const Batch&, const models::ModelOutput& out) override;
  void add_loss_terms(StepContext&, const Batch&, const models::ModelOutput&, LossTerms&) override;
  void on_step_end(StepContext&) override;
  nlohmann::json stats() const override { return der_->stats(); }
  void save(torch::serialize::OutputArchive&) const override;
  void load(torch::serialize::InputArchive&) override;

  /// Focal loss (gamma 2) of probabilities p against binary targets t, mean over valid pixels.
  static torch::Tensor focal_loss(const torch::Tensor& p, const torch::Tensor& t, const torch::Tensor& valid,
                                  double gamma = 2);
  /// The background-aware pixel weights: 1 on foreground, (1 - w)^gamma on background with
  /// w > 0.5 set to 1 (exposed for tests).
  static torch::Tensor background_weights(const torch::Tensor& labels, const torch::Tensor& seen, double gamma);

 private:
  torch::Tensor detect(const torch::Tensor& features, const torch::Tensor& prototype, int64_t h, int64_t w);
  torch::Tensor seen_probability(const torch::Tensor& features, int num_old_steps, int64_t h, int64_t w);
  double feature_weight_, gamma_;
  DecoderHead detector_;        ///< the background detector's 1x1 conv
  torch::Tensor prototypes_;    ///< [steps, D]
  torch::Tensor proto_counts_;  ///< [steps]
  torch::Tensor pending_seen_;  ///< this batch's seen probability (task_loss -> add_loss_terms)
  std::unique_ptr<Rehearsal> der_;
};

}  // namespace cseg::methods
