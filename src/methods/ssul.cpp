#include "cseg/methods/ssul.h"

#include <algorithm>
#include <numeric>
#include <random>

#include "cseg/core/error.h"
#include "cseg/core/runtime.h"
#include "cseg/models/layers.h"
#include "cseg/models/predictions.h"

namespace F = torch::nn::functional;

namespace cseg::methods {

SSUL::SSUL(Options o, int default_memory)
    : name_(default_memory > 0 ? "ssul-m" : "ssul"),
      pseudo_threshold_(o.real("pseudo_threshold", 0.7)),
      bg_lr_mult_(o.real("bg_lr_mult", 1e-4)) {
  const int memory = o.integer("memory", default_memory);
  CSEG_CHECK(memory >= 0, "method_options.{}.memory must be >= 0 (0: no exemplar memory), got {}", name_, memory);
  if (memory > 0) {
    // The memory's buffer and its filling are image replay's; the crops are mixed in here.
    auto v = buffer_options(o, memory);
    v["ratio"] = "0";
    v["seed"] = std::to_string(o.integer("seed", 0));
    memory_ = std::make_unique<Rehearsal>(Rehearsal::Kind::Replay, Options("replay", v), name_);
  }
  o.finish();
}

void SSUL::before_forward(StepContext& ctx, Batch& batch) {
  if (!memory_ || ctx.step == 0 || memory_->buffer().size() == 0 || batch.size() < 2) return;
  // SSUL-M: stored crops take the place of half of the batch, at random positions.
  const auto& buffer = memory_->buffer();
  const uint64_t seed = core::mix_seed(0x55A1, uint64_t(ctx.step), uint64_t(ctx.iteration));
  auto items = buffer.draw(size_t(batch.size() / 2), seed);
  std::vector<int64_t> positions(size_t(batch.size()));
  std::iota(positions.begin(), positions.end(), 0);
  std::shuffle(positions.begin(), positions.end(), std::mt19937_64(seed));
  positions.resize(items.size());
  auto [images, labels] = buffer.batch(items, batch.images.device());
  CSEG_CHECK(images.sizes().slice(1) == batch.images.sizes().slice(1),
             "{}: stored crops are {}x{} but this step's are {}x{} (augment.crop_size changed?)", name_, images.size(2),
             images.size(3), batch.images.size(2), batch.images.size(3));
  auto where = torch::tensor(positions, torch::TensorOptions().dtype(torch::kLong)).to(batch.images.device());
  batch.images = batch.images.index_copy(0, where, images);
  batch.labels = batch.labels.index_copy(0, where, labels.to(batch.labels.dtype()));
  if (batch.saliency.defined()) batch.saliency = batch.saliency.index_fill(0, where, 0);  // no unknown class
  for (size_t i = 0; i < items.size(); ++i) {
    const auto at = size_t(positions[i]);
    if (at < batch.ids.size()) batch.ids[at] = "memory:" + std::to_string(items[i]);
    if (at < batch.indices.size()) batch.indices[at] = size_t(-1);  // not a dataset image
  }
}

void SSUL::on_step_end(StepContext& ctx) {
  if (memory_) memory_->on_step_end(ctx);
}

nlohmann::json SSUL::stats() const { return memory_ ? memory_->stats() : nlohmann::json::object(); }

std::vector<torch::Tensor> SSUL::parameters() { return {unknown_.weight, unknown_.bias}; }

torch::Tensor SSUL::unknown_logits(const models::ModelOutput& out) {
  return models::resize_to(unknown_(out.feature("decoder")), out.logits.size(2), out.logits.size(3));
}

void SSUL::on_step_begin(StepContext& ctx) {
  unknown_.ensure(*ctx.model);
  auto& model = *ctx.model;
  model.train_everything();
  if (ctx.step == 0) return;
  // Freeze everything but the newest head and head 0 (for its background row), with the frozen
  // network's normalisation statistics fixed as SSUL's --freeze --bn_freeze do.
  const int newest = int(model.head_sizes().size()) - 1;
  model.train_only_heads({0, newest});
  // New heads start as the unknown class (SSUL's initialisation).
  torch::NoGradGuard no_grad;
  auto params = model.named_parameters();
  for (const auto& alias : model.head_aliases()) {
    auto* w = params.find(fmt::format("{}.{}.weight", alias.heads, newest));
    auto* b = params.find(fmt::format("{}.{}.bias", alias.heads, newest));
    if (w && b && w->size(1) == unknown_.weight.size(1)) {
      w->copy_(unknown_.weight.expand_as(*w));
      b->copy_(unknown_.bias.expand_as(*b));
    }
  }
}

std::pair<torch::Tensor, torch::Tensor> SSUL::targets(const torch::Tensor& labels, const torch::Tensor& saliency,
                                                      const torch::Tensor& old_logits, int num_classes,
                                                      double pseudo_threshold) {
  auto l = labels.clone();
  const auto unknown = int64_t(num_classes);
  auto bg = labels == 0;
  if (old_logits.defined() && old_logits.size(1) > 1) {
    auto scores = torch::sigmoid(old_logits.narrow(1, 1, old_logits.size(1) - 1));
    auto [best, cls] = scores.max(1);
    auto pseudo = bg & (best >= pseudo_threshold);
    l = torch::where(pseudo, cls + 1, l);
    bg = bg & ~pseudo;
  }
  if (saliency.defined()) l = torch::where(bg & (saliency > 0), torch::full_like(l, unknown), l);
  auto valid = l != 255;
  auto safe = torch::where(valid, l, torch::zeros_like(l));
  auto onehot = F::one_hot(safe, num_classes + 1).permute({0, 3, 1, 2}).to(torch::kFloat);
  return {onehot, valid};
}

torch::Tensor SSUL::task_loss(StepContext& ctx, const Batch& batch, const models::ModelOutput& out) {
  CSEG_CHECK(batch.saliency.defined(), "ssul: the batch has no saliency maps");
  auto all = torch::cat({out.logits, unknown_logits(out)}, 1);
  auto [onehot, valid] =
      targets(batch.labels, batch.saliency.to(torch::kLong), ctx.old_output ? ctx.old_output->logits : torch::Tensor(),
              ctx.num_classes, pseudo_threshold_);
  auto bce = F::binary_cross_entropy_with_logits(all, onehot,
                                                 F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kNone));
  auto mask = valid.unsqueeze(1).to(torch::kFloat);
  return (bce * mask).sum() / (mask.sum() * double(all.size(1))).clamp_min(1);
}

void SSUL::after_backward(StepContext& ctx) {
  if (ctx.step == 0) return;
  // Head 0 at later steps: only the background row learns, bg_lr_mult times slower.
  auto params = ctx.model->named_parameters();
  for (const auto& alias : ctx.model->head_aliases())
    for (const char* suffix : {".0.weight", ".0.bias"}) {
      auto* p = params.find(alias.heads + suffix);
      if (!p || !p->grad().defined()) continue;
      auto g = p->grad();
      g.narrow(0, 1, g.size(0) - 1).zero_();
      g.narrow(0, 0, 1).mul_(bg_lr_mult_);
    }
}

torch::Tensor SSUL::predict(const models::ModelOutput& out) {
  if (!unknown_.defined()) return models::predicted_classes(out.logits);
  torch::NoGradGuard no_grad;
  auto all = torch::cat({out.logits, unknown_logits(out)}, 1);
  auto pred = models::predicted_classes(all);
  return pred.masked_fill(pred == out.logits.size(1), 0);  // unknown counts as background
}

void SSUL::save(torch::serialize::OutputArchive& a) const {
  unknown_.save(a, "unknown");
  if (memory_) memory_->save(a);
}

void SSUL::load(torch::serialize::InputArchive& a) {
  unknown_.load(a, "unknown");
  if (memory_) memory_->load(a);
}

}  // namespace cseg::methods
