#include "cseg/methods/sdr.h"

#include "cseg/methods/continual_losses.h"
#include "cseg/methods/distillation.h"
#include "cseg/models/layers.h"
#include "cseg/models/predictions.h"

namespace F = torch::nn::functional;

namespace cseg::methods {

namespace {
/// Labels resized to the feature map by nearest neighbour.
torch::Tensor labels_at(const torch::Tensor& labels, const torch::Tensor& features) {
  return models::resize_nearest(labels, features.size(2), features.size(3));
}
}  // namespace

SDR::SDR(Options o)
    : kd_weight_(o.real("kd_weight", 100.0)),
      matching_weight_(o.real("matching_weight", 0.01)),
      attraction_weight_(o.real("attraction_weight", 1e-3)),
      repulsion_weight_(o.real("repulsion_weight", 1e-3)),
      sparsity_weight_(o.real("sparsity_weight", 1e-3)) {
  o.finish();
}

std::pair<torch::Tensor, torch::Tensor> SDR::class_sums(const torch::Tensor& features, const torch::Tensor& labels,
                                                        int num_classes) {
  const int64_t d = features.size(1);
  auto f = features.permute({0, 2, 3, 1}).reshape({-1, d});
  auto l = labels.reshape({-1});
  auto keep = (l > 0) & (l < num_classes);
  auto idx = l.index({keep});
  auto sums = torch::zeros({num_classes, d}, features.options()).index_add(0, idx, f.index({keep}));
  auto counts = torch::zeros({num_classes}, features.options()).index_add(0, idx, torch::ones({idx.size(0)}, features.options()));
  return {sums, counts};
}

void SDR::on_step_begin(StepContext& ctx) {
  if (ctx.step > 0) init_new_head_from_background(*ctx.model);
  // Grow the prototype table to this step's classes (rows of new classes start empty).
  if (prototypes_.defined() && prototypes_.size(0) < ctx.num_classes) {
    const int64_t extra = ctx.num_classes - prototypes_.size(0);
    prototypes_ = torch::cat({prototypes_, torch::zeros({extra, prototypes_.size(1)}, prototypes_.options())});
    counts_ = torch::cat({counts_, torch::zeros({extra}, counts_.options())});
  }
}

torch::Tensor SDR::task_loss(StepContext& ctx, const Batch& batch, const models::ModelOutput& out) {
  if (ctx.step == 0) return Method::task_loss(ctx, batch, out);
  return unbiased_ce(out.logits, batch.labels, ctx.num_old_classes);
}

void SDR::add_loss_terms(StepContext& ctx, const Batch& batch, const models::ModelOutput& out, LossTerms& terms) {
  const auto& f = out.feature("encoder");
  const int k = ctx.num_classes;
  auto labels = labels_at(batch.labels, f);
  if (!prototypes_.defined()) {
    prototypes_ = torch::zeros({k, f.size(1)}, torch::TensorOptions().device(f.device()));  // float32 under autocast too
    counts_ = torch::zeros({k}, prototypes_.options());
  }
  auto [sums, counts] = class_sums(f, labels, k);
  auto present = counts > 0;
  auto means = sums / counts.clamp_min(1).unsqueeze(1);  // batch class means (with gradient)
  {
    // Running prototypes of the classes of this step's labels.
    torch::NoGradGuard no_grad;
    auto total = counts_ + counts.detach();
    auto updated = (prototypes_ * counts_.unsqueeze(1) + sums.detach()) / total.clamp_min(1).unsqueeze(1);
    prototypes_ = torch::where(present.unsqueeze(1), updated, prototypes_);
    counts_ = total;
  }
  // Every term is logged at every iteration; one that has nothing to work on is 0.
  auto zero = torch::zeros({}, f.options());
  torch::Tensor attraction = zero, repulsion = zero, sparsity = zero, matching = zero;
  auto idx = present.nonzero().flatten();
  if (idx.numel() > 0) {
    // Attraction: every labelled pixel towards its class prototype.
    const int64_t d = f.size(1);
    auto flat = f.permute({0, 2, 3, 1}).reshape({-1, d});
    auto l = labels.reshape({-1});
    auto keep = (l > 0) & (l < k);
    auto targets = prototypes_.index({l.index({keep})});
    attraction = attraction_weight_ * F::mse_loss(flat.index({keep}), targets);
    // Repulsion: batch class means away from each other and from the other classes' prototypes.
    auto batch_means = means.index({idx});
    auto seen = (counts_ > 0) & ~present;
    auto others = torch::cat({batch_means, prototypes_.index({seen.nonzero().flatten()})});
    if (others.size(0) > 1) {
      auto dist = torch::cdist(batch_means.unsqueeze(0), others.unsqueeze(0)).squeeze(0);  // [B, B + P]
      auto self = torch::zeros_like(dist, torch::kBool);
      self.narrow(1, 0, batch_means.size(0)).fill_diagonal_(true);
      repulsion = repulsion_weight_ * (1.0 / (dist.index({~self}) + 1e-8)).mean();
    }
    // Sparsification: each class's features scaled by their maximum.
    std::vector<torch::Tensor> sparse;
    for (int64_t c : std::vector<int64_t>(idx.data_ptr<int64_t>(), idx.data_ptr<int64_t>() + idx.numel())) {
      auto fc = flat.index({l == c});
      auto norm = fc / (fc.max() + 1e-15);
      sparse.push_back((norm.exp().sum(1) / (norm.sum(1) + 1e-15)).mean());
    }
    sparsity = sparsity_weight_ * torch::stack(sparse).mean();
  }
  terms.emplace_back("attraction", attraction);
  terms.emplace_back("repulsion", repulsion);
  terms.emplace_back("sparsity", sparsity);
  if (!ctx.old_output) return;
  terms.emplace_back("kd", kd_weight_ * unbiased_kd(out.logits, ctx.old_output->logits));
  // Prototype matching: old classes the old model sees on background pixels.
  auto old_pred = models::predicted_classes(ctx.old_output->logits);
  auto located = torch::where(batch.labels == 0, old_pred, torch::zeros_like(old_pred));
  auto [old_sums, old_counts] = class_sums(f, labels_at(located, f), ctx.num_old_classes);
  auto found = ((old_counts > 0) & (counts_.narrow(0, 0, ctx.num_old_classes) > 0)).nonzero().flatten();
  if (found.numel() > 0) {
    auto m = old_sums.index({found}) / old_counts.index({found}).unsqueeze(1);
    matching = matching_weight_ * F::mse_loss(m, prototypes_.index({found}));
  }
  terms.emplace_back("matching", matching);
}

void SDR::save(torch::serialize::OutputArchive& a) const {
  if (!prototypes_.defined()) return;
  a.write("prototypes", prototypes_);
  a.write("prototype_counts", counts_);
}

void SDR::load(torch::serialize::InputArchive& a) {
  torch::Tensor p, c;
  if (a.try_read("prototypes", p) && a.try_read("prototype_counts", c)) {
    prototypes_ = p;
    counts_ = c;
  }
}

}  // namespace cseg::methods
