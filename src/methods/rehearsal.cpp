#include "cseg/methods/rehearsal.h"

#include <cmath>

#include "cseg/core/error.h"
#include "cseg/core/log.h"
#include "cseg/core/runtime.h"
#include "cseg/methods/continual_losses.h"
#include "cseg/models/predictions.h"
#include "cseg/scenarios/scenario.h"

namespace F = torch::nn::functional;

namespace cseg::methods {

namespace {
/// Cross-entropy averaged over the labelled pixels (255 ignored); 0, with a graph, when none is.
torch::Tensor labelled_cross_entropy(const torch::Tensor& logits, const torch::Tensor& target) {
  auto ce = F::cross_entropy(logits, target, F::CrossEntropyFuncOptions().ignore_index(255).reduction(torch::kSum));
  const auto valid = (target != 255).sum().item<int64_t>();
  return valid > 0 ? ce / double(valid) : ce * 0;
}
}  // namespace

std::map<std::string, std::string> buffer_options(Options& o, int default_memory, const std::string& default_policy) {
  return {{"memory", std::to_string(o.integer("memory", default_memory))},
          {"policy", o.choice("policy", default_policy, policy_names())},
          {"selection", o.choice("selection", "random", selection_names())}};
}

Rehearsal::Rehearsal(Kind kind, Options o, std::string owner) : kind_(kind), owner_(std::move(owner)) {
  ReplayBuffer::Options b;
  b.capacity = o.integer("memory", 100);
  b.policy = o.choice("policy", "class_balanced", policy_names());
  b.selection = o.choice("selection", "random", selection_names());
  b.seed = uint64_t(o.integer("seed", 0));
  ratio_ = kind == Kind::Replay || kind == Kind::Latent ? o.real("ratio", 0.25) : 0;
  if (kind == Kind::Replay || kind == Kind::Latent)
    ratio_mode_ = o.choice("ratio_mode", "fixed", {"fixed", "per_step", "adaptive", "focus_first"});
  if (kind == Kind::Latent) {
    layer_ = o.choice("layer", "learning_to_downsample",
                      {"learning_to_downsample", "global_feature_extractor", "feature_fusion"});
    freeze_ = o.flag("freeze", true);
  }
  const bool der = kind == Kind::DER || kind == Kind::DERpp;
  replay_batch_ = der ? o.integer("replay_batch", 0) : 0;
  alpha_ = der ? o.real("alpha", 0.8) : 0;
  beta_ = kind == Kind::DERpp ? o.real("beta", 0.5) : 0;
  o.finish();
  CSEG_CHECK(ratio_ >= 0 && ratio_ < 1, "method_options.{}.ratio must be in [0, 1), got {}", name(), ratio_);
  buffer_ = std::make_unique<ReplayBuffer>(b);
}

std::string Rehearsal::name() const {
  switch (kind_) {
    case Kind::Replay: return "replay";
    case Kind::DER: return "der";
    case Kind::DERpp: return "der++";
    case Kind::Latent: return "latent_replay";
  }
  return "?";
}

double Rehearsal::replay_share(int step) const {
  if (ratio_mode_ == "per_step") return std::min(0.9, ratio_ * step);  // `ratio` per earlier step
  if (ratio_mode_ == "adaptive") return 1.0 - 1.0 / (step + 1);        // every step seen gets 1/n
  return ratio_;                                                       // fixed, focus_first
}

std::vector<size_t> Rehearsal::draw_replay(const StepContext& ctx, int64_t batch_size, uint64_t salt) const {
  if (ctx.step == 0 || buffer_->size() == 0) return {};
  const double share = replay_share(ctx.step);
  if (share <= 0) return {};
  const auto n = size_t(std::lround(double(batch_size) * share / (1 - share)));
  if (n == 0) return {};
  return buffer_->draw(n, core::mix_seed(salt, uint64_t(ctx.step), uint64_t(ctx.iteration)),
                       ratio_mode_ == "focus_first" ? 0 : -1);
}

void Rehearsal::before_forward(StepContext& ctx, Batch& batch) {
  if (kind_ != Kind::Replay) return;
  auto idx = draw_replay(ctx, batch.size(), 0xB0FF);
  if (idx.empty()) return;
  auto [images, labels] = buffer_->batch(idx, batch.images.device());
  CSEG_CHECK(images.sizes().slice(1) == batch.images.sizes().slice(1),
             "replay: stored crops are {}x{} but this step's are {}x{} (augment.crop_size changed?)", images.size(2),
             images.size(3), batch.images.size(2), batch.images.size(3));
  batch.images = torch::cat({batch.images, images}, 0);
  batch.labels = torch::cat({batch.labels, labels}, 0);
  for (size_t i : idx) {
    batch.ids.push_back("replay:" + std::to_string(i));
    batch.indices.push_back(size_t(-1));
  }
}

void Rehearsal::on_step_begin(StepContext& ctx) {
  if (kind_ != Kind::Latent) return;
  CSEG_CHECK(!ctx.model->latent_layers().empty(), "latent_replay needs a model with latent layers (fast_scnn)");
  ctx.model->latent_taps(layer_);  // checks the model has this layer
  ctx.model->freeze_through(ctx.step > 0 && freeze_ ? layer_ : "");
}

void Rehearsal::add_latent_replay(StepContext& ctx, const Batch& batch, LossTerms& terms) {
  auto idx = draw_replay(ctx, batch.size(), 0x1A7E);
  if (idx.empty()) return;
  auto [latents, labels] = buffer_->latent_batch(idx, models::device_of(*ctx.model));
  auto logits = ctx.model->forward_from(layer_, latents, labels.size(1), labels.size(2));
  terms.emplace_back("latent_replay",
                     double(idx.size()) / double(batch.size()) * labelled_cross_entropy(logits, labels));
}

void Rehearsal::add_loss_terms(StepContext& ctx, const Batch& batch, const models::ModelOutput&, LossTerms& terms) {
  if (kind_ == Kind::Latent) return add_latent_replay(ctx, batch, terms);
  if (kind_ == Kind::Replay || ctx.step == 0 || buffer_->size() == 0) return;
  const size_t n = replay_batch_ > 0 ? size_t(replay_batch_) : size_t(batch.size());
  auto idx = buffer_->draw(n, core::mix_seed(0xDE5, uint64_t(ctx.step), uint64_t(ctx.iteration)));
  auto [images, labels] = buffer_->batch(idx, models::device_of(*ctx.model));
  auto out = ctx.model->forward(images);
  auto current = out.feature("logits_lowres");
  // Targets: the stored logits, completed with the current (detached) values for later classes.
  std::vector<torch::Tensor> targets;
  for (size_t i = 0; i < idx.size(); ++i) {
    auto stored = (*buffer_)[idx[i]].logits.to(current.device(), torch::kFloat);
    const int64_t c = stored.size(0);
    auto now = current[long(i)].detach();
    targets.push_back(c < now.size(0) ? torch::cat({stored, now.narrow(0, c, now.size(0) - c)}, 0) : stored);
  }
  terms.emplace_back("der", alpha_ * F::mse_loss(current, torch::stack(targets)));
  if (kind_ == Kind::DERpp) {
    std::vector<int64_t> seen;
    for (size_t i : idx) seen.push_back((*buffer_)[i].logits.size(0));
    terms.emplace_back(
        "der_ce", beta_ * labelled_cross_entropy(out.logits, der_ce_target(labels, seen, ctx.first_new_label > 0)));
  }
}

torch::Tensor der_ce_target(const torch::Tensor& labels, const std::vector<int64_t>& seen, bool background_shift) {
  auto target = labels.clone();
  if (background_shift) target.masked_fill_(target == 0, 255);
  for (size_t i = 0; i < seen.size(); ++i)
    target[long(i)].masked_fill_((target[long(i)] >= seen[i]) & (target[long(i)] != 255), 255);
  return target;
}

torch::Tensor selection_priority(const std::string& s, const torch::Tensor& logits, const torch::Tensor& labels) {
  if (s == "confidence" || s == "margin") {
    auto p = logits.softmax(1);
    if (s == "confidence") return 1 - std::get<0>(p.max(1)).mean({1, 2});
    auto top = std::get<0>(p.topk(2, 1));
    return 1 - (top.select(1, 0) - top.select(1, 1)).mean({1, 2});
  }
  if (s == "loss" || s == "accuracy") {
    const auto valid = (labels != 255).to(torch::kFloat);
    const auto count = valid.sum({1, 2}).clamp_min(1);
    if (s == "loss") {
      auto ce =
          F::cross_entropy(logits, labels, F::CrossEntropyFuncOptions().ignore_index(255).reduction(torch::kNone));
      return ce.sum({1, 2}) / count;
    }
    auto right = (models::predicted_classes(logits) == labels).to(torch::kFloat) * valid;
    return 1 - right.sum({1, 2}) / count;
  }
  return normalized_entropy(logits).mean({1, 2});  // uncertainty; also the (unused) score of random, herding, cover
}

void Rehearsal::on_step_end(StepContext& ctx) {
  std::vector<ReplayItem> candidates;
  const bool was_training = ctx.model->is_training(), had_taps = ctx.model->feature_taps();
  ctx.model->eval();
  ctx.model->set_feature_taps(true);  // the selection's embedding, DER's logits, the latents
  torch::NoGradGuard no_grad;
  const auto taps = kind_ == Kind::Latent ? ctx.model->latent_taps(layer_) : std::vector<std::string>{};
  ctx.visit_train_data([&](const Batch& b) {
    auto out = ctx.model->forward(b.images);
    auto priority = selection_priority(buffer_->options().selection, out.logits, b.labels);
    const bool by_importance = buffer_->options().policy == "importance_reservoir";
    auto importance = by_importance ? bacs_importance(out.logits, b.labels).cpu() : torch::Tensor();
    auto embedding = out.feature("encoder").mean({2, 3});
    for (int64_t i = 0; i < b.size(); ++i) {
      ReplayItem it;
      if (kind_ == Kind::Latent)
        for (const auto& t : taps) it.latents.push_back(out.feature(t)[i]);
      else
        it.image = b.images[i];
      it.label = b.labels[i];
      if (kind_ == Kind::DER || kind_ == Kind::DERpp) it.logits = out.feature("logits_lowres")[i];
      it.embedding = embedding[i].clone();
      it.priority = priority[i].item<double>();
      if (by_importance) it.importance = importance[i].item<double>();
      ReplayBuffer::to_stored_form(it);  // copies: nothing keeps the batch alive
      candidates.push_back(std::move(it));
    }
  });
  ctx.model->train(was_training);
  ctx.model->set_feature_taps(had_taps);
  buffer_->add(std::move(candidates), ctx.step, ctx.first_new_label);
  std::string per_step;
  for (const auto& [s, n] : buffer_->per_step()) per_step += fmt::format(" step{}:{}", s, n);
  log::info("[{}] replay buffer: {} {}, {:.1f} MB ({})", owner_.empty() ? name() : owner_, buffer_->size(),
            kind_ == Kind::Latent ? "latent states" : "crops", buffer_->bytes() / 1e6, per_step);
}

}  // namespace cseg::methods
