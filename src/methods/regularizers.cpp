#include "cseg/methods/regularizers.h"

#include "cseg/core/error.h"
#include "cseg/methods/state_archive.h"

namespace cseg::methods {

namespace {
using TensorMap = ParameterRegularizer::TensorMap;

TensorMap snapshot(const models::Segmenter& model) {
  TensorMap out;
  for (const auto& p : model.named_parameters())
    if (p.value().requires_grad()) out[p.key()] = p.value().detach().clone();
  return out;
}

}  // namespace

ParameterRegularizer::ParameterRegularizer(Kind kind, Options o) : kind_(kind) {
  // MiB's importance weights: EWC 500, PI 500, RW 100.
  weight_ = o.real("weight", kind == Kind::RW ? 100.0 : 500.0);
  alpha_ = o.real("fisher_alpha", 0.9);
  rw_every_ = o.integer("score_every", 10);
  o.finish();
  CSEG_CHECK(alpha_ > 0 && alpha_ <= 1, "method_options.{}.fisher_alpha must be in (0, 1], got {}", name(), alpha_);
  CSEG_CHECK(rw_every_ >= 1, "method_options.{}.score_every must be >= 1, got {}", name(), rw_every_);
}

std::string ParameterRegularizer::name() const {
  switch (kind_) {
    case Kind::EWC: return "ewc";
    case Kind::PI: return "pi";
    case Kind::RW: return "rw";
  }
  return "?";
}

TensorMap ParameterRegularizer::normalized(const TensorMap& scores) {
  if (scores.empty()) return {};
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (const auto& [k, t] : scores) {
    lo = std::min(lo, t.min().item<double>());
    hi = std::max(hi, t.max().item<double>());
  }
  TensorMap out;
  for (const auto& [k, t] : scores) out[k] = (t - lo) / (hi - lo + 1e-8);
  return out;
}

torch::Tensor ParameterRegularizer::penalty(const models::Segmenter& model, const TensorMap& importance,
                                            const TensorMap& old_params) {
  torch::Tensor total = torch::zeros({}, torch::TensorOptions().device(models::device_of(model)));
  for (const auto& p : model.named_parameters()) {
    auto imp = importance.find(p.key());
    auto old = old_params.find(p.key());
    if (imp == importance.end() || old == old_params.end() || old->second.sizes() != p.value().sizes()) continue;
    total = total + (imp->second * (p.value() - old->second).pow(2)).sum();
  }
  return total;
}

void ParameterRegularizer::on_step_begin(StepContext& ctx) {
  old_params_ = snapshot(*ctx.model);
  fisher_.clear();
  score_.clear();
  rw_anchor_ = kind_ == Kind::RW ? old_params_ : TensorMap{};
  updates_ = 0;
}

void ParameterRegularizer::add_loss_terms(StepContext& ctx, const Batch&, const models::ModelOutput&,
                                          LossTerms& terms) {
  if (ctx.step == 0) return;
  TensorMap importance;
  if (kind_ == Kind::EWC)
    importance = normalized(old_fisher_);
  else if (kind_ == Kind::PI)
    importance = normalized(old_score_);
  else {
    auto f = normalized(old_fisher_), s = normalized(old_score_);
    for (auto& [k, t] : f) importance[k] = s.count(k) ? t + s[k] : t;
  }
  terms.emplace_back(name(), weight_ * penalty(*ctx.model, importance, old_params_));
}

void ParameterRegularizer::after_backward(StepContext& ctx) {
  grads_.clear();
  before_step_.clear();
  for (const auto& p : ctx.model->named_parameters()) {
    if (!p.value().requires_grad() || !p.value().grad().defined()) continue;
    auto g = p.value().grad().detach().clone();
    grads_[p.key()] = g;
    if (kind_ != Kind::PI) {  // online Fisher: F <- alpha g^2 + (1 - alpha) F
      auto& f = fisher_[p.key()];
      f = f.defined() ? alpha_ * g.pow(2) + (1 - alpha_) * f : alpha_ * g.pow(2);
    }
    if (kind_ == Kind::PI) before_step_[p.key()] = p.value().detach().clone();
  }
}

void ParameterRegularizer::after_optimizer_step(StepContext& ctx) {
  ++updates_;
  if (kind_ == Kind::PI) {
    // delta += g * (theta_before - theta_after)
    for (const auto& p : ctx.model->named_parameters()) {
      auto g = grads_.find(p.key());
      if (g == grads_.end()) continue;
      auto contribution = g->second * (before_step_[p.key()] - p.value().detach());
      auto& s = score_[p.key()];
      s = s.defined() ? s + contribution : contribution;
    }
  } else if (kind_ == Kind::RW && updates_ % rw_every_ == 0) {
    // score += g * (theta_prev - theta) / (0.5 F (theta - theta_prev)^2 + 1e-8), every n updates.
    for (const auto& p : ctx.model->named_parameters()) {
      auto g = grads_.find(p.key());
      auto anchor = rw_anchor_.find(p.key());
      if (g == grads_.end()) continue;
      auto theta = p.value().detach();
      if (anchor != rw_anchor_.end() && anchor->second.sizes() == theta.sizes()) {
        auto diff = anchor->second - theta;
        auto contribution = g->second * diff / (0.5 * fisher_[p.key()] * diff.pow(2) + 1e-8);
        auto& s = score_[p.key()];
        s = s.defined() ? s + contribution : contribution;
      }
      rw_anchor_[p.key()] = theta.clone();
    }
  }
  grads_.clear();
  before_step_.clear();
}

void ParameterRegularizer::on_step_end(StepContext& ctx) {
  if (kind_ != Kind::PI) {
    for (auto& [k, f] : fisher_) old_fisher_[k] = f;  // new parameters (heads) join with their Fisher
  }
  if (kind_ == Kind::PI) {
    // score = max(delta / ((theta - theta_old)^2 + 1e-20), 0) + score_old
    for (const auto& p : ctx.model->named_parameters()) {
      auto d = score_.find(p.key());
      if (d == score_.end()) continue;
      auto old = old_params_.find(p.key());
      auto moved = old != old_params_.end() && old->second.sizes() == p.value().sizes()
                       ? (p.value().detach() - old->second).pow(2)
                       : p.value().detach().pow(2);
      auto s = (d->second / (moved + 1e-20)).clamp_min(0);
      auto prev = old_score_.find(p.key());
      old_score_[p.key()] = prev != old_score_.end() && prev->second.sizes() == s.sizes() ? s + prev->second : s;
    }
  } else if (kind_ == Kind::RW) {
    // saved score = 0.5 (max(score, 0) + score_old)
    for (auto& [k, s] : score_) {
      auto prev = old_score_.find(k);
      auto pos = s.clamp_min(0);
      old_score_[k] =
          prev != old_score_.end() && prev->second.sizes() == s.sizes() ? 0.5 * (pos + prev->second) : 0.5 * pos;
    }
  }
}

void ParameterRegularizer::save(torch::serialize::OutputArchive& a) const {
  save_tensor_map(a, "old_params", old_params_);
  save_tensor_map(a, "fisher", fisher_);
  save_tensor_map(a, "old_fisher", old_fisher_);
  save_tensor_map(a, "score", score_);
  save_tensor_map(a, "old_score", old_score_);
  save_tensor_map(a, "rw_anchor", rw_anchor_);  // RW's last anchor: a mid-step resume measures from it
  a.write("updates", torch::tensor(updates_));
}

void ParameterRegularizer::load(torch::serialize::InputArchive& a) {
  load_tensor_map(a, "old_params", old_params_);
  load_tensor_map(a, "fisher", fisher_);
  load_tensor_map(a, "old_fisher", old_fisher_);
  load_tensor_map(a, "score", score_);
  load_tensor_map(a, "old_score", old_score_);
  load_tensor_map(a, "rw_anchor", rw_anchor_);
  if (kind_ == Kind::RW && rw_anchor_.empty()) rw_anchor_ = old_params_;  // a checkpoint from before it was saved
  torch::Tensor u;
  if (a.try_read("updates", u)) updates_ = u.item<int64_t>();
}

}  // namespace cseg::methods
