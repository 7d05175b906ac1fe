#include "cseg/methods/dkd.h"

#include "cseg/core/error.h"
#include "cseg/models/layers.h"

namespace F = torch::nn::functional;

namespace cseg::methods {

DKD::DKD(Options o)
    : pos_weight_first_(o.real("pos_weight_first", 2)),
      pos_weight_(o.real("pos_weight", 1)),
      kd_weight_(o.real("kd_weight", 5)),
      dkd_pos_weight_(o.real("dkd_pos_weight", 5)),
      dkd_neg_weight_(o.real("dkd_neg_weight", 5)),
      ac_weight_(o.real("ac_weight", 1)),
      init_from_auxiliary_(o.flag("init", true)),
      freeze_norm_(o.flag("freeze_norm", true)) {
  o.finish();
}

torch::Tensor DKD::multilabel_bce(const torch::Tensor& x, const torch::Tensor& labels, int first, double pos_weight) {
  const int64_t n = x.size(1) - first;
  if (n <= 0) return x.sum() * 0;
  auto classes = torch::arange(first, x.size(1), labels.options()).view({1, n, 1, 1});
  auto target = (labels.unsqueeze(1) == classes).to(x.scalar_type());
  auto z = x.narrow(1, first, n);
  // -[pw·y·log σ(z) + (1 − y)·log(1 − σ(z))], with −log σ(z) = softplus(−z).
  auto loss = pos_weight * target * F::softplus(-z) + (1 - target) * F::softplus(z);
  return loss.mean({0, 2, 3}).sum();
}

torch::Tensor DKD::soft_bce(const torch::Tensor& x, const torch::Tensor& x_old) {
  if (x.size(1) == 0) return x.sum() * 0;
  auto loss = F::binary_cross_entropy_with_logits(x, torch::sigmoid(x_old),
                                                  F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kNone));
  return loss.mean({0, 2, 3}).sum();
}

std::pair<torch::Tensor, torch::Tensor> DKD::decompose(const torch::Tensor& features, const torch::Tensor& weight) {
  auto w = weight.reshape({weight.size(0), weight.size(1), 1, 1}).to(features.scalar_type());
  return {F::conv2d(features, w.clamp_min(0)), F::conv2d(features, w.clamp_max(0))};
}

torch::Tensor DKD::sigmoid_prediction(const torch::Tensor& x) {
  const auto options = x.options().dtype(torch::kLong);
  if (x.size(1) <= 1) return torch::zeros({x.size(0), x.size(2), x.size(3)}, options);
  auto [best, index] = torch::sigmoid(x.narrow(1, 1, x.size(1) - 1)).max(1);
  return (index + 1).masked_fill(best <= 0.5, 0);  // DKD: background where no score exceeds 0.5
}

torch::Tensor DKD::classifier_weight(models::Segmenter& model) {
  const auto aliases = model.head_aliases();
  CSEG_CHECK(!aliases.empty(), "dkd: the model names no classifier heads");
  auto params = model.named_parameters(true);
  std::vector<torch::Tensor> rows;
  for (size_t k = 0; k < model.head_sizes().size(); ++k) {
    const auto key = fmt::format("{}.{}.weight", aliases.front().heads, k);
    const auto* w = params.find(key);
    CSEG_CHECK(w && w->dim() == 4 && w->size(2) == 1 && w->size(3) == 1,
               "dkd: the model has no 1x1 classifier weight '{}' (DKD decomposes the logits of 1x1 heads)", key);
    rows.push_back(w->reshape({w->size(0), w->size(1)}));
  }
  return torch::cat(rows, 0);
}

void DKD::on_step_begin(StepContext& ctx) {
  auto& model = *ctx.model;
  auxiliary_.ensure(model);
  if (ctx.step == 0 || !init_from_auxiliary_ || ac_weight_ <= 0) return;
  // The new head starts as the auxiliary classifier, which has learnt what is not a new class.
  torch::NoGradGuard no_grad;
  const int newest = int(model.head_sizes().size()) - 1;
  auto params = model.named_parameters();
  const auto heads = model.head_aliases().front().heads;
  auto* w = params.find(fmt::format("{}.{}.weight", heads, newest));
  auto* b = params.find(fmt::format("{}.{}.bias", heads, newest));
  if (w && b && w->size(1) == auxiliary_.weight.size(1)) {
    w->copy_(auxiliary_.weight.expand_as(*w));
    b->copy_(auxiliary_.bias.expand_as(*b));
  }
}

void DKD::before_forward(StepContext& ctx, Batch&) {
  if (ctx.step == 0 || !freeze_norm_) return;
  // The trainer puts the model in training mode; from step 1 on, DKD keeps the normalisation
  // statistics of the previous steps and no dropout (the affine parameters still train).
  for (const auto& m : ctx.model->modules(false))
    if (std::dynamic_pointer_cast<models::BatchNorm2dImpl>(m) || std::dynamic_pointer_cast<torch::nn::DropoutImpl>(m))
      m->eval();
}

torch::Tensor DKD::task_loss(StepContext& ctx, const Batch& batch, const models::ModelOutput& out) {
  // This step's classes; never channel 0 (background is the absence of every class).
  const int first = std::max(1, ctx.first_new_label);
  return multilabel_bce(out.logits, batch.labels, first, ctx.step == 0 ? pos_weight_first_ : pos_weight_);
}

void DKD::add_loss_terms(StepContext& ctx, const Batch&, const models::ModelOutput& out, LossTerms& terms) {
  const auto decoder = out.feature("decoder").to(torch::kFloat);
  // The auxiliary classifier learns from detached features: it must not move the network.
  auto aux = models::resize_to(auxiliary_(decoder.detach()), out.logits.size(2), out.logits.size(3));
  terms.emplace_back("ac", ac_weight_ * F::softplus(aux).mean());  // BCE against 0 everywhere
  if (ctx.step == 0 || !ctx.old_output) return;
  const auto& old = *ctx.old_output;
  const int64_t old_classes = old.logits.size(1) - 1;  // the old model's classes but background
  if (old_classes <= 0) return;
  terms.emplace_back("kd",
                     kd_weight_ * soft_bce(out.logits.narrow(1, 1, old_classes), old.logits.narrow(1, 1, old_classes)));
  auto [pos, neg] = decompose(decoder, classifier_weight(*ctx.model).narrow(0, 1, old_classes));
  torch::Tensor pos_old, neg_old;
  {
    torch::NoGradGuard no_grad;
    std::tie(pos_old, neg_old) = decompose(old.feature("decoder").to(torch::kFloat),
                                           classifier_weight(*ctx.old_model).narrow(0, 1, old_classes));
  }
  terms.emplace_back("dkd_pos", dkd_pos_weight_ * soft_bce(pos, pos_old));
  terms.emplace_back("dkd_neg", dkd_neg_weight_ * soft_bce(neg, neg_old));
}

torch::Tensor DKD::predict(const models::ModelOutput& out) {
  torch::NoGradGuard no_grad;
  return sigmoid_prediction(out.logits);
}

}  // namespace cseg::methods
