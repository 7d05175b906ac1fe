#include "cseg/methods/sdr.h"

#include <cmath>

#include "cseg/methods/continual_losses.h"
#include "cseg/methods/distillation.h"
#include "cseg/models/layers.h"
#include "cseg/models/predictions.h"

namespace F = torch::nn::functional;
using torch::indexing::Slice;

namespace cseg::methods {

namespace {
/// Labels resized to the feature map by nearest neighbour.
torch::Tensor labels_at(const torch::Tensor& labels, const torch::Tensor& features) {
  return models::resize_nearest(labels, features.size(2), features.size(3));
}

/// The label values present, ascending.
std::vector<int64_t> labels_present(const torch::Tensor& labels) {
  auto u =
      std::get<0>(torch::_unique(labels.reshape({-1}), /*sorted=*/true)).to(torch::kCPU, torch::kLong).contiguous();
  return {u.data_ptr<int64_t>(), u.data_ptr<int64_t>() + u.numel()};
}

/// cseg's repulsion: mean of 1 / (distance + 1e-8) from each batch class mean to the other batch
/// means and to the prototypes of the seen classes not in the batch.
torch::Tensor repulsion_from_means_and_prototypes(const torch::Tensor& batch_means, const torch::Tensor& in_batch,
                                                  const torch::Tensor& prototypes, const torch::Tensor& counts) {
  auto seen = (counts > 0) & ~in_batch;
  auto others = torch::cat({batch_means, prototypes.index({seen.nonzero().flatten()})});
  if (others.size(0) <= 1) return torch::zeros({}, batch_means.options());
  auto dist = torch::cdist(batch_means.unsqueeze(0), others.unsqueeze(0)).squeeze(0);  // [B, B + P]
  auto self = torch::zeros_like(dist, torch::kBool);
  self.narrow(1, 0, batch_means.size(0)).fill_diagonal_(true);
  return (1.0 / (dist.index({~self}) + 1e-8)).mean();
}

/// The reference's repulsion: 1 / distance between the batch's class means, infinite values
/// (a mean against itself, or two equal means) dropped; 0 when nothing is left.
torch::Tensor repulsion_among_means(const torch::Tensor& batch_means) {
  auto zero = torch::zeros({}, batch_means.options());
  if (batch_means.size(0) == 0) return zero;
  auto inverse = 1.0 / torch::cdist(batch_means.unsqueeze(0), batch_means.unsqueeze(0)).squeeze(0);
  auto finite = inverse.index({~torch::isinf(inverse)});
  if (finite.numel() == 0) return zero;
  auto r = finite.mean();
  return torch::isnan(r).item<bool>() ? zero : r;
}
}  // namespace

SDR::SDR(Options o)
    : kd_weight_(o.real("kd_weight", 100.0)),
      matching_weight_(o.real("matching_weight", 0.01)),
      attraction_weight_(o.real("attraction_weight", 1e-3)),
      repulsion_weight_(o.real("repulsion_weight", 1e-3)),
      sparsity_weight_(o.real("sparsity_weight", 1e-3)) {
  const auto names = o.subset("faithful", faithful_names());
  faithful_.gather = names.count("gather") > 0;
  faithful_.classes = names.count("classes") > 0;
  faithful_.attraction_mean = names.count("attraction_mean") > 0;
  faithful_.repulsion = names.count("repulsion") > 0;
  faithful_.sparsity = names.count("sparsity") > 0;
  faithful_.steps = names.count("steps") > 0;
  faithful_.head_init = names.count("head_init") > 0;
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
  auto counts =
      torch::zeros({num_classes}, features.options()).index_add(0, idx, torch::ones({idx.size(0)}, features.options()));
  return {sums, counts};
}

torch::Tensor SDR::class_features(const torch::Tensor& features, const torch::Tensor& mask, bool mixed) {
  if (mixed) return features.masked_select(mask.unsqueeze(1).expand_as(features)).view({features.size(1), -1});
  return features.permute({1, 0, 2, 3}).index({Slice(), mask});
}

std::vector<int64_t> SDR::prototype_classes(const torch::Tensor& labels, int num_classes, scenarios::Mode mode,
                                            int step, bool reference) {
  auto present = labels_present(labels);
  std::vector<int64_t> out;
  if (!reference) {
    for (int64_t c : present)
      if (c > 0 && c < num_classes) out.push_back(c);
    return out;
  }
  // The code trusts no background statistics where old classes hide in it (every step of
  // overlap, disjoint after step 0) and drops the first label then, background or not.
  const bool drop_first = mode == scenarios::Mode::Overlap || (mode != scenarios::Mode::Sequential && step > 0);
  if (drop_first && !present.empty()) present.erase(present.begin());
  if (!present.empty() && present.back() == 255) present.pop_back();
  for (int64_t c : present)
    if (c < num_classes) out.push_back(c);
  return out;
}

void SDR::update_prototypes(torch::Tensor& prototypes, torch::Tensor& counts, const torch::Tensor& features,
                            const torch::Tensor& labels, const std::vector<int64_t>& classes, bool mixed) {
  torch::NoGradGuard no_grad;
  auto f = features.detach();
  for (int64_t c : classes) {
    auto g = class_features(f, labels == c, mixed);
    const double n = static_cast<double>(g.size(1)), before = counts[c].item<double>();
    prototypes[c] = (g.sum(1) + before * prototypes[c]) / (before + n);
    counts[c] += n;
  }
}

std::pair<torch::Tensor, torch::Tensor> SDR::clustering(const torch::Tensor& features, const torch::Tensor& labels,
                                                        const torch::Tensor& prototypes, const torch::Tensor& counts,
                                                        const Faithful& faithful) {
  auto zero = torch::zeros({}, features.options());
  const int k = static_cast<int>(prototypes.size(0));
  if (!faithful.gather && !faithful.classes && !faithful.attraction_mean) {
    // cseg's own, vectorised: every labelled foreground pixel towards its class prototype.
    auto [sums, batch_counts] = class_sums(features, labels, k);
    auto present = batch_counts > 0;
    auto idx = present.nonzero().flatten();
    if (idx.numel() == 0) return {zero, zero};
    const int64_t d = features.size(1);
    auto flat = features.permute({0, 2, 3, 1}).reshape({-1, d});
    auto l = labels.reshape({-1});
    auto keep = (l > 0) & (l < k);
    auto attraction = F::mse_loss(flat.index({keep}), prototypes.index({l.index({keep})}));
    auto batch_means = (sums / batch_counts.clamp_min(1).unsqueeze(1)).index({idx});
    auto repulsion = faithful.repulsion ? repulsion_among_means(batch_means)
                                        : repulsion_from_means_and_prototypes(batch_means, present, prototypes, counts);
    return {attraction, repulsion};
  }
  // Class by class, as the reference does.
  auto present = labels_present(labels);
  if (!present.empty() && present.back() == 255) present.pop_back();
  std::vector<int64_t> classes;
  for (int64_t c : present)
    if (c < k && (faithful.classes || c > 0)) classes.push_back(c);
  if (classes.empty()) return {zero, zero};
  torch::Tensor attraction = zero;
  double pixels = 0;
  std::vector<torch::Tensor> means;
  for (int64_t c : classes) {
    auto g = class_features(features, labels == c, faithful.gather);  // [D, n]
    means.push_back(g.mean(1));
    auto mse = F::mse_loss(g, prototypes[c].unsqueeze(1).expand_as(g));
    if (faithful.attraction_mean) {
      // The reference divides the running sum by the class count after every addition.
      attraction = (attraction + mse) / static_cast<double>(classes.size());
    } else {
      attraction = attraction + mse * static_cast<double>(g.size(1));
      pixels += static_cast<double>(g.size(1));
    }
  }
  if (!faithful.attraction_mean) attraction = attraction / pixels;
  auto batch_means = torch::stack(means);
  torch::Tensor repulsion;
  if (faithful.repulsion) {
    repulsion = repulsion_among_means(batch_means);
  } else {
    auto in_batch = torch::zeros({k}, torch::TensorOptions().dtype(torch::kBool).device(features.device()));
    for (int64_t c : classes) in_batch[c] = true;
    repulsion = repulsion_from_means_and_prototypes(batch_means, in_batch, prototypes, counts);
  }
  return {attraction, repulsion};
}

torch::Tensor SDR::sparsity(const torch::Tensor& features, const torch::Tensor& labels, int num_classes,
                            bool reference) {
  auto zero = torch::zeros({}, features.options());
  if (!reference) {
    // Per foreground class: features scaled by the class's maximum, the ratio averaged over its
    // pixels; then the mean over classes.
    const int64_t d = features.size(1);
    auto flat = features.permute({0, 2, 3, 1}).reshape({-1, d});
    auto l = labels.reshape({-1});
    std::vector<torch::Tensor> per_class;
    for (int64_t c : labels_present(labels)) {
      if (c <= 0 || c >= num_classes) continue;
      auto fc = flat.index({l == c});
      auto norm = fc / (fc.max() + 1e-15);
      per_class.push_back((norm.exp().sum(1) / (norm.sum(1) + 1e-15)).mean());
    }
    return per_class.empty() ? zero : torch::stack(per_class).mean();
  }
  // The reference: every label present (ignored pixels too) scaled by its maximum, unless the
  // batch is only background; the ratio averaged over every pixel.
  auto present = labels_present(labels);
  if (!present.empty() && present.back() == 0) present.pop_back();
  auto normalised = torch::zeros_like(features);
  for (int64_t c : present) {
    auto mask = (labels == c).unsqueeze(1);
    auto max = features.masked_select(mask.expand_as(features)).max();
    normalised = normalised + features / (max + 1e-15) * mask.to(features.scalar_type());
  }
  if (!(normalised.sum() > 0).item<bool>()) return zero;
  return (normalised.exp().sum(1) / (normalised.sum(1) + 1e-15)).mean();
}

torch::Tensor SDR::matching(const torch::Tensor& features, const torch::Tensor& located,
                            const torch::Tensor& prototypes, const torch::Tensor& counts, int num_old_classes,
                            const Faithful& faithful) {
  auto zero = torch::zeros({}, features.options());
  if (!faithful.gather && !faithful.classes) {
    auto [sums, found_counts] = class_sums(features, located, num_old_classes);
    auto found = ((found_counts > 0) & (counts.narrow(0, 0, num_old_classes) > 0)).nonzero().flatten();
    if (found.numel() == 0) return zero;
    auto m = sums.index({found}) / found_counts.index({found}).unsqueeze(1);
    return F::mse_loss(m, prototypes.index({found}));
  }
  std::vector<int64_t> classes;
  for (int64_t c : labels_present(located))
    if (c > 0 && c < num_old_classes && (faithful.classes || counts[c].item<double>() > 0)) classes.push_back(c);
  if (classes.empty()) return zero;
  std::vector<torch::Tensor> means;
  for (int64_t c : classes) {
    auto mask = located == c;
    // The reference reads the selected values as rows of D (channels mix at any batch size).
    means.push_back(
        faithful.gather
            ? features.masked_select(mask.unsqueeze(1).expand_as(features)).view({-1, features.size(1)}).mean(0)
            : class_features(features, mask, false).mean(1));
  }
  auto index = torch::tensor(classes, torch::TensorOptions().dtype(torch::kLong).device(features.device()));
  return F::mse_loss(torch::stack(means), prototypes.index({index}));
}

void SDR::on_step_begin(StepContext& ctx) {
  if (ctx.step > 0 && !faithful_.head_init) init_new_head_from_background(*ctx.model);
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
  const auto mode = ctx.scenario ? ctx.scenario->mode() : scenarios::Mode::Sequential;
  auto labels = labels_at(batch.labels, f);
  if (!prototypes_.defined()) {
    prototypes_ =
        torch::zeros({k, f.size(1)}, torch::TensorOptions().device(f.device()));  // float32 under autocast too
    counts_ = torch::zeros({k}, prototypes_.options());
  }
  // Running prototypes of this batch's classes, updated before the terms below use them.
  if (faithful_.gather || faithful_.classes) {
    update_prototypes(prototypes_, counts_, f, labels, prototype_classes(labels, k, mode, ctx.step, faithful_.classes),
                      faithful_.gather);
  } else {
    torch::NoGradGuard no_grad;
    auto [sums, counts] = class_sums(f.detach(), labels, k);
    auto total = counts_ + counts;
    auto updated = (prototypes_ * counts_.unsqueeze(1) + sums) / total.clamp_min(1).unsqueeze(1);
    prototypes_ = torch::where((counts > 0).unsqueeze(1), updated, prototypes_);
    counts_ = total;
  }
  // Every term is logged at every iteration; one that has nothing to work on is 0.
  auto zero = torch::zeros({}, f.options());
  torch::Tensor attraction = zero, repulsion = zero;
  if (!(faithful_.steps && ctx.step == 0)) {
    std::tie(attraction, repulsion) = clustering(f, labels, prototypes_, counts_, faithful_);
    attraction = attraction_weight_ * attraction;
    repulsion = repulsion_weight_ * repulsion;
  }
  terms.emplace_back("attraction", attraction);
  terms.emplace_back("repulsion", repulsion);
  terms.emplace_back("sparsity", sparsity_weight_ * sparsity(f, labels, k, faithful_.sparsity));
  if (!ctx.old_output) return;
  terms.emplace_back("kd", kd_weight_ * unbiased_kd(out.logits, ctx.old_output->logits));
  // Prototype matching: old classes the old model sees on background pixels (the reference, in
  // sequential mode: old classes by their labels).
  torch::Tensor located;
  if (faithful_.classes && mode == scenarios::Mode::Sequential) {
    located = torch::where(batch.labels < ctx.num_old_classes, batch.labels, torch::zeros_like(batch.labels));
  } else {
    auto old_pred = models::predicted_classes(ctx.old_output->logits);
    located = torch::where(batch.labels == 0, old_pred, torch::zeros_like(old_pred));
  }
  terms.emplace_back("matching", matching_weight_ * matching(f, labels_at(located, f), prototypes_, counts_,
                                                             ctx.num_old_classes, faithful_));
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
