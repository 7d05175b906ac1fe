#include "cseg/methods/rehearsal.h"

#include <spdlog/spdlog.h>

#include <cmath>

#include "cseg/core/error.h"
#include "cseg/core/runtime.h"
#include "cseg/methods/continual_losses.h"
#include "cseg/scenarios/scenario.h"

namespace F = torch::nn::functional;

namespace cseg::methods {

Rehearsal::Rehearsal(Kind kind, Options o) : kind_(kind) {
  ReplayBuffer::Options b;
  b.capacity = o.integer("memory", 100);
  b.policy = o.choice("policy", "class_balanced", {"reservoir", "class_balanced", "experience_balanced"});
  b.selection = o.choice("selection", "random", {"random", "herding", "uncertainty"});
  b.seed = uint64_t(o.integer("seed", 0));
  ratio_ = kind == Kind::Replay ? o.real("ratio", 0.25) : 0;
  replay_batch_ = kind == Kind::Replay ? 0 : o.integer("replay_batch", 0);
  alpha_ = kind == Kind::Replay ? 0 : o.real("alpha", 0.8);
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
  }
  return "?";
}

void Rehearsal::before_forward(StepContext& ctx, Batch& batch) {
  if (kind_ != Kind::Replay || ctx.step == 0 || buffer_->size() == 0 || ratio_ <= 0) return;
  const auto n = size_t(std::lround(double(batch.size()) * ratio_ / (1 - ratio_)));
  if (n == 0) return;
  auto idx = buffer_->draw(n, core::mix_seed(0xB0FF, uint64_t(ctx.step), uint64_t(ctx.iteration)));
  auto [images, labels] = buffer_->batch(idx);
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

void Rehearsal::add_loss_terms(StepContext& ctx, const Batch& batch, const models::ModelOutput&, LossTerms& terms) {
  if (kind_ == Kind::Replay || ctx.step == 0 || buffer_->size() == 0) return;
  const size_t n = replay_batch_ > 0 ? size_t(replay_batch_) : size_t(batch.size());
  auto idx = buffer_->draw(n, core::mix_seed(0xDE5, uint64_t(ctx.step), uint64_t(ctx.iteration)));
  auto [images, labels] = buffer_->batch(idx);
  auto out = ctx.model->forward(images);
  auto current = out.features.at("logits_lowres");
  // Targets: the stored logits, completed with the current (detached) values for later classes.
  std::vector<torch::Tensor> targets;
  for (size_t i = 0; i < idx.size(); ++i) {
    auto stored = (*buffer_)[idx[i]].logits.to(torch::kFloat);
    const int64_t c = stored.size(0);
    auto now = current[long(i)].detach();
    targets.push_back(c < now.size(0) ? torch::cat({stored, now.narrow(0, c, now.size(0) - c)}, 0) : stored);
  }
  terms.emplace_back("der", alpha_ * F::mse_loss(current, torch::stack(targets)));
  if (kind_ == Kind::DERpp) {
    // CE on stored labels; background and classes unknown at storage time weigh 0.
    auto target = labels.clone();
    target.masked_fill_(target == 0, 255);
    for (size_t i = 0; i < idx.size(); ++i) {
      const int64_t seen = (*buffer_)[idx[i]].logits.size(0);
      target[long(i)].masked_fill_(target[long(i)] >= seen & target[long(i)] != 255, 255);
    }
    auto ce = F::cross_entropy(out.logits, target, F::CrossEntropyFuncOptions().ignore_index(255).reduction(torch::kSum));
    const auto valid = (target != 255).sum().item<int64_t>();
    terms.emplace_back("der_ce", beta_ * (valid > 0 ? ce / double(valid) : ce * 0));
  }
}

void Rehearsal::on_step_end(StepContext& ctx) {
  std::vector<ReplayItem> candidates;
  const bool was_training = ctx.model->is_training();
  ctx.model->eval();
  torch::NoGradGuard no_grad;
  ctx.visit_train_data([&](const Batch& b) {
    auto out = ctx.model->forward(b.images);
    auto entropy = normalized_entropy(out.logits).mean({1, 2});
    auto embedding = out.features.at("encoder").mean({2, 3});
    for (int64_t i = 0; i < b.size(); ++i) {
      ReplayItem it;
      it.image = b.images[i].clone();
      it.label = b.labels[i].clone();
      if (kind_ != Kind::Replay) it.logits = out.features.at("logits_lowres")[i].clone();
      it.embedding = embedding[i].clone();
      it.uncertainty = entropy[i].item<double>();
      candidates.push_back(std::move(it));
    }
  });
  ctx.model->train(was_training);
  buffer_->add(std::move(candidates), ctx.step, ctx.first_new_label);
  std::string per_step;
  for (const auto& [s, n] : buffer_->per_step()) per_step += fmt::format(" step{}:{}", s, n);
  spdlog::info("[{}] replay buffer: {} crops, {:.1f} MB ({})", name(), buffer_->size(), buffer_->bytes() / 1e6, per_step);
}

}  // namespace cseg::methods
