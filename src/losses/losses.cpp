#include "cseg/losses/losses.h"

#include "cseg/core/error.h"

namespace cseg::losses {

namespace {

torch::Tensor class_weights(const std::vector<double>& w, int64_t c, const torch::Tensor& like) {
  if (w.empty()) return {};
  CSEG_CHECK(static_cast<int64_t>(w.size()) >= c, "loss.class_weights has {} values for {} classes", w.size(), c);
  return torch::tensor(std::vector<double>(w.begin(), w.begin() + c), like.options());
}

/// Per-pixel -log p_target, and the mask of labelled pixels; ignored pixels get 0.
std::pair<torch::Tensor, torch::Tensor> pixel_nll(const torch::Tensor& logits, const torch::Tensor& target) {
  auto valid = target != kIgnore;
  auto safe = target.masked_fill(~valid, 0);
  auto logp = torch::log_softmax(logits, 1);
  auto nll = -logp.gather(1, safe.unsqueeze(1)).squeeze(1);
  return {nll * valid, valid};
}

/// One-hot targets and a validity mask, both [N, C, H, W] / [N, 1, H, W].
std::pair<torch::Tensor, torch::Tensor> one_hot(const torch::Tensor& target, int64_t c, const torch::Tensor& like) {
  auto valid = (target != kIgnore).unsqueeze(1).to(like.dtype());
  auto safe = target.masked_fill(target == kIgnore, 0);
  auto oh = torch::zeros_like(like).scatter_(1, safe.unsqueeze(1), 1.0);
  return {oh * valid, valid};
}

}  // namespace

torch::Tensor cross_entropy(const torch::Tensor& logits, const torch::Tensor& target,
                            const std::vector<double>& weights) {
  auto [nll, valid] = pixel_nll(logits, target);
  auto w = class_weights(weights, logits.size(1), logits);
  if (!w.defined()) {
    auto n = valid.sum();
    return nll.sum() / n.clamp_min(1);
  }
  auto pw = w.index({target.masked_fill(~valid, 0)}) * valid;
  return (nll * pw).sum() / pw.sum().clamp_min(1e-12);
}

torch::Tensor focal_loss(const torch::Tensor& logits, const torch::Tensor& target, double gamma,
                         const std::vector<double>& weights) {
  auto [nll, valid] = pixel_nll(logits, target);
  auto pt = torch::exp(-nll);
  auto loss = torch::pow(1 - pt, gamma) * nll * valid;
  auto w = class_weights(weights, logits.size(1), logits);
  if (w.defined()) loss = loss * w.index({target.masked_fill(~valid, 0)});
  return loss.sum() / valid.sum().clamp_min(1);
}

torch::Tensor dice_loss(const torch::Tensor& logits, const torch::Tensor& target) {
  auto p = torch::softmax(logits, 1);
  auto [t, valid] = one_hot(target, logits.size(1), p);
  p = p * valid;
  auto inter = (p * t).sum({0, 2, 3});
  auto denom = p.sum({0, 2, 3}) + t.sum({0, 2, 3});
  auto present = t.sum({0, 2, 3}) > 0;
  if (present.sum().item<int64_t>() == 0) return logits.sum() * 0;
  auto dice = (2 * inter + 1e-6) / (denom + 1e-6);
  return 1 - dice.masked_select(present).mean();
}

torch::Tensor soft_iou_loss(const torch::Tensor& logits, const torch::Tensor& target) {
  auto p = torch::softmax(logits, 1);
  auto [t, valid] = one_hot(target, logits.size(1), p);
  p = p * valid;
  auto inter = (p * t).sum({0, 2, 3});
  auto uni = (p + t - p * t).sum({0, 2, 3});
  auto present = t.sum({0, 2, 3}) > 0;
  if (present.sum().item<int64_t>() == 0) return logits.sum() * 0;
  auto iou = (inter + 1e-6) / (uni + 1e-6);
  return 1 - iou.masked_select(present).mean();
}

torch::Tensor ohem_cross_entropy(const torch::Tensor& logits, const torch::Tensor& target, double keep,
                                 const std::vector<double>& weights) {
  auto [nll, valid] = pixel_nll(logits, target);
  auto w = class_weights(weights, logits.size(1), logits);
  if (w.defined()) nll = nll * w.index({target.masked_fill(~valid, 0)});
  auto losses = nll.masked_select(valid);
  if (losses.numel() == 0) return logits.sum() * 0;
  const int64_t k = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(keep * losses.numel())));
  return std::get<0>(losses.topk(k)).mean();
}

namespace {

/// The loss registry: config name -> the loss over logits and labels with its options.
struct LossEntry {
  const char* name;
  torch::Tensor (*loss)(const LossOptions&, const torch::Tensor& logits, const torch::Tensor& target);
};
const std::vector<LossEntry>& registry() {
  static const std::vector<LossEntry> table{
      {"ce", [](const LossOptions& o, const torch::Tensor& x,
                const torch::Tensor& y) { return cross_entropy(x, y, o.class_weights); }},
      {"focal", [](const LossOptions& o, const torch::Tensor& x,
                   const torch::Tensor& y) { return focal_loss(x, y, o.focal_gamma, o.class_weights); }},
      {"dice", [](const LossOptions&, const torch::Tensor& x, const torch::Tensor& y) { return dice_loss(x, y); }},
      {"soft_iou",
       [](const LossOptions&, const torch::Tensor& x, const torch::Tensor& y) { return soft_iou_loss(x, y); }},
      {"ohem", [](const LossOptions& o, const torch::Tensor& x,
                  const torch::Tensor& y) { return ohem_cross_entropy(x, y, o.ohem_keep, o.class_weights); }},
  };
  return table;
}

}  // namespace

std::vector<std::string> loss_names() {
  std::vector<std::string> names;
  for (const auto& e : registry()) names.push_back(e.name);
  return names;
}

torch::Tensor segmentation_loss(const LossOptions& cfg, const torch::Tensor& logits, const torch::Tensor& target) {
  for (const auto& e : registry())
    if (cfg.name == e.name) return e.loss(cfg, logits, target);
  fail("unknown loss '{}'; known: {}", cfg.name, fmt::join(loss_names(), ", "));
}

}  // namespace cseg::losses
