#pragma once
/// Parameter-importance regularisers as MiB implements them (and PLOP/SDR reuse): EWC, PI (path
/// integral / SI) and RW (Riemannian walk). After the task loss, a penalty
/// weight * sum over parameters of importance * (theta - theta_old)^2 keeps the parameters that
/// mattered for earlier steps close to their values at the end of the previous step. Importances
/// are min-max normalised over all parameters: (s - min) / (max - min + 1e-8). Parameters added
/// at this step (new heads) have no old value and are not penalised.
#include <map>

#include "cseg/methods/method.h"
#include "cseg/methods/options.h"

namespace cseg::methods {

class ParameterRegularizer : public Method {
 public:
  enum class Kind { EWC, PI, RW };
  ParameterRegularizer(Kind kind, Options o);
  std::string name() const override;
  bool needs_features() const override { return false; }  // weights and logits only
  void on_step_begin(StepContext&) override;
  void add_loss_terms(StepContext&, const Batch&, const models::ModelOutput&, LossTerms&) override;
  void after_backward(StepContext&) override;
  void after_optimizer_step(StepContext&) override;
  void on_step_end(StepContext&) override;
  void save(torch::serialize::OutputArchive&) const override;
  void load(torch::serialize::InputArchive&) override;

  using TensorMap = std::map<std::string, torch::Tensor>;
  /// (s - min) / (max - min + 1e-8) with min and max over every tensor of the map.
  static TensorMap normalized(const TensorMap& scores);
  /// The penalty for the given importances and old parameters (exposed for tests).
  static torch::Tensor penalty(const models::Segmenter& model, const TensorMap& importance,
                               const TensorMap& old_params);

 private:
  Kind kind_;
  double weight_, alpha_;
  int rw_every_;
  // State carried across steps (saved in checkpoints):
  TensorMap old_params_;  ///< theta at the end of the previous step (the start of this one)
  TensorMap fisher_;      ///< EWC/RW: running Fisher of this step
  TensorMap old_fisher_;  ///< EWC/RW: Fisher of the previous steps (normalised at use)
  TensorMap score_;       ///< PI: path integral of this step; RW: accumulated score
  TensorMap old_score_;   ///< PI/RW: scores of the previous steps
  // Per-update scratch (not saved: recomputed within an iteration):
  TensorMap before_step_, grads_, rw_anchor_;
  int64_t updates_ = 0;
};

}  // namespace cseg::methods
