#include "cseg/methods/bacs.h"

#include <cmath>

#include "cseg/core/error.h"
#include "cseg/models/layers.h"

namespace F = torch::nn::functional;

namespace cseg::methods {

namespace {
/// The options BACS passes on to its DER++ part.
Options der_options(Options& o) {
  auto v = buffer_options(o, 100, "importance_reservoir");  // BACS's own filling
  v["alpha"] = fmt::format("{}", o.real("alpha", 0.8));
  v["beta"] = fmt::format("{}", o.real("beta", 0.5));
  return Options("der++", v);
}
}  // namespace

BACS::BACS(Options o) : feature_weight_(o.real("feature_weight", 0.25)), gamma_(o.real("gamma", 2.0)) {
  der_ = std::make_unique<Rehearsal>(Rehearsal::Kind::DERpp, der_options(o), "bacs");
  o.finish();
}

std::vector<torch::Tensor> BACS::parameters() { return {detector_.weight, detector_.bias}; }

torch::Tensor BACS::detect(const torch::Tensor& features, const torch::Tensor& prototype, int64_t h, int64_t w) {
  auto diff = (torch::sigmoid(features) - torch::sigmoid(prototype).view({1, -1, 1, 1})).abs();
  auto logit = detector_(diff);
  return torch::sigmoid(models::resize_to(logit, h, w)).squeeze(1);
}

torch::Tensor BACS::seen_probability(const torch::Tensor& features, int num_old_steps, int64_t h, int64_t w) {
  torch::Tensor seen;
  for (int s = 0; s < num_old_steps && s < prototypes_.size(0); ++s) {
    if (proto_counts_[s].item<double>() == 0) continue;
    auto p = detect(features, prototypes_[s], h, w);
    seen = seen.defined() ? torch::maximum(seen, p) : p;
  }
  return seen;
}

void BACS::on_step_begin(StepContext& ctx) {
  if (!detector_.defined()) {
    const int64_t channels = detector_.ensure(*ctx.model);
    prototypes_ = torch::zeros({0, channels}, detector_.weight.options().requires_grad(false));
    proto_counts_ = torch::zeros({0}, prototypes_.options());
  }
  if (prototypes_.size(0) <= ctx.step) {
    const int64_t extra = ctx.step + 1 - prototypes_.size(0);
    prototypes_ = torch::cat({prototypes_, torch::zeros({extra, prototypes_.size(1)}, prototypes_.options())});
    proto_counts_ = torch::cat({proto_counts_, torch::zeros({extra}, proto_counts_.options())});
  }
  der_->on_step_begin(ctx);
}

torch::Tensor BACS::focal_loss(const torch::Tensor& p, const torch::Tensor& t, const torch::Tensor& valid,
                               double gamma) {
  auto pt = torch::where(t > 0.5, p, 1 - p).clamp(1e-6, 1.0);
  auto loss = -(1 - pt).pow(gamma) * pt.log();
  auto m = valid.to(torch::kFloat);
  return (loss * m).sum() / m.sum().clamp_min(1);
}

torch::Tensor BACS::background_weights(const torch::Tensor& labels, const torch::Tensor& seen, double gamma) {
  auto w = torch::where(seen > 0.5, torch::ones_like(seen), seen);
  return torch::where(labels == 0, (1 - w).pow(gamma), torch::ones_like(seen));
}

torch::Tensor BACS::task_loss(StepContext& ctx, const Batch& batch, const models::ModelOutput& out) {
  pending_seen_ = torch::Tensor();
  if (ctx.step == 0) return Method::task_loss(ctx, batch, out);
  {
    torch::NoGradGuard no_grad;  // the detector's prediction only weighs pixels here
    pending_seen_ = seen_probability(out.feature("decoder"), ctx.step, out.logits.size(2), out.logits.size(3));
  }
  if (!pending_seen_.defined()) return Method::task_loss(ctx, batch, out);
  auto per_pixel = F::cross_entropy(out.logits, batch.labels,
                                    F::CrossEntropyFuncOptions().ignore_index(255).reduction(torch::kNone));
  auto weights = background_weights(batch.labels, pending_seen_.detach(), gamma_);
  auto valid = (batch.labels != 255).to(torch::kFloat);
  return (per_pixel * weights * valid).sum() / valid.sum().clamp_min(1);
}

void BACS::add_loss_terms(StepContext& ctx, const Batch& batch, const models::ModelOutput& out, LossTerms& terms) {
  const auto& f = out.feature("decoder");
  const int64_t h = out.logits.size(2), w = out.logits.size(3);
  // Prototype of this step: running mean of the decoder features of foreground pixels.
  auto labels_small = models::resize_nearest(batch.labels, f.size(2), f.size(3));
  auto fg = ((labels_small > 0) & (labels_small != 255)).to(torch::kFloat);
  {
    torch::NoGradGuard no_grad;
    const double n = fg.sum().item<double>();
    if (n > 0) {
      auto mean = (f.detach() * fg.unsqueeze(1)).sum({0, 2, 3}) / n;
      const double c = proto_counts_[ctx.step].item<double>();
      prototypes_[ctx.step] = (prototypes_[ctx.step] * c + mean * n) / (c + n);
      proto_counts_[ctx.step] = c + n;
    }
  }
  // Detector: foreground 1, background 0 against this step's prototype, fading out by the end.
  auto p = detect(f, prototypes_[ctx.step], h, w);
  const double max_epochs =
      std::max(1.0, double(ctx.total_iterations) / std::max<int64_t>(1, ctx.iterations_per_epoch));
  const double fade = std::max(0.0, 1.0 - std::exp(double(ctx.epoch) - max_epochs));
  auto target = (batch.labels > 0).to(torch::kFloat);
  terms.emplace_back("detector", fade * focal_loss(p, target, batch.labels != 255));
  // Masked feature distillation on the background the detector calls seen (from task_loss).
  if (ctx.step > 0 && ctx.old_output) {
    auto seen = pending_seen_.defined() ? pending_seen_.detach() : torch::Tensor();
    if (seen.defined()) {
      auto mask = ((batch.labels == 0) & (seen > 0.5)).to(torch::kFloat);
      auto mask_small = models::resize_nearest(mask, f.size(2), f.size(3)).unsqueeze(1);
      auto diff = (f - ctx.old_output->feature("decoder")).pow(2) * mask_small;
      terms.emplace_back("feature_kd",
                         feature_weight_ * diff.sum() / (mask_small.sum() * double(f.size(1))).clamp_min(1));
    }
  }
  der_->add_loss_terms(ctx, batch, out, terms);
}

void BACS::on_step_end(StepContext& ctx) { der_->on_step_end(ctx); }

void BACS::save(torch::serialize::OutputArchive& a) const {
  if (detector_.defined()) {
    detector_.save(a, "detector");
    a.write("prototypes", prototypes_);
    a.write("prototype_counts", proto_counts_);
  }
  der_->save(a);
}

void BACS::load(torch::serialize::InputArchive& a) {
  torch::Tensor p, c;
  if (detector_.load(a, "detector") && a.try_read("prototypes", p) && a.try_read("prototype_counts", c)) {
    prototypes_ = p.clone();
    proto_counts_ = c.clone();
  }
  der_->load(a);
}

}  // namespace cseg::methods
