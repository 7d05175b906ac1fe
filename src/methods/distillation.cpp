#include "cseg/methods/distillation.h"

#include <fmt/ranges.h>

#include <cmath>

#include "cseg/core/error.h"
#include "cseg/core/log.h"
#include "cseg/losses/losses.h"
#include "cseg/methods/continual_losses.h"
#include "cseg/models/predictions.h"

namespace F = torch::nn::functional;

namespace cseg::methods {

void init_new_head_from_background(models::Segmenter& model) {
  const auto sizes = model.head_sizes();
  if (sizes.size() < 2) return;
  const int newest = int(sizes.size()) - 1, n_new = sizes.back();
  auto params = model.named_parameters();
  torch::NoGradGuard no_grad;
  for (const auto& alias : model.head_aliases()) {
    auto* w_bg = params.find(alias.heads + ".0.weight");
    auto* b_bg = params.find(alias.heads + ".0.bias");
    auto* w_new = params.find(fmt::format("{}.{}.weight", alias.heads, newest));
    auto* b_new = params.find(fmt::format("{}.{}.bias", alias.heads, newest));
    if (!w_bg || !b_bg || !w_new || !b_new) continue;
    const double shift = std::log(double(n_new) + 1.0);
    w_new->copy_(w_bg->narrow(0, 0, 1).expand_as(*w_new));
    b_new->copy_((b_bg->narrow(0, 0, 1) - shift).expand_as(*b_new));
    b_bg->narrow(0, 0, 1).sub_(shift);
  }
}

LwF::LwF(Options o) : kd_weight_(o.real("kd_weight", 100.0)) { o.finish(); }

void LwF::add_loss_terms(StepContext& ctx, const Batch&, const models::ModelOutput& out, LossTerms& terms) {
  if (ctx.old_output) terms.emplace_back("kd", kd_weight_ * lwf_kd(out.logits, ctx.old_output->logits));
}

LwFMC::LwFMC(Options o) : kd_weight_(o.real("kd_weight", 10.0)) { o.finish(); }

torch::Tensor LwFMC::task_loss(StepContext&, const Batch& batch, const models::ModelOutput& out) {
  return onehot_bce(out.logits, batch.labels);
}

void LwFMC::add_loss_terms(StepContext& ctx, const Batch&, const models::ModelOutput& out, LossTerms& terms) {
  if (ctx.old_output)
    terms.emplace_back("kd", kd_weight_ * double(ctx.num_old_classes) * sigmoid_kd(out.logits, ctx.old_output->logits));
}

ILT::ILT(Options o) : kd_weight_(o.real("kd_weight", 100.0)), feature_weight_(o.real("feature_weight", 100.0)) {
  o.finish();
}

void ILT::add_loss_terms(StepContext& ctx, const Batch&, const models::ModelOutput& out, LossTerms& terms) {
  if (!ctx.old_output) return;
  terms.emplace_back("kd", kd_weight_ * lwf_kd(out.logits, ctx.old_output->logits));
  terms.emplace_back("feature_kd",
                     feature_weight_ * F::mse_loss(out.feature("encoder"), ctx.old_output->feature("encoder")));
}

MiB::MiB(Options o) : kd_weight_(o.real("kd_weight", 10.0)), init_(o.flag("init", true)) { o.finish(); }

void MiB::on_step_begin(StepContext& ctx) {
  if (ctx.step > 0 && init_) init_new_head_from_background(*ctx.model);
}

torch::Tensor MiB::task_loss(StepContext& ctx, const Batch& batch, const models::ModelOutput& out) {
  if (ctx.step == 0) return Method::task_loss(ctx, batch, out);
  return unbiased_ce(out.logits, batch.labels, ctx.num_old_classes);
}

void MiB::add_loss_terms(StepContext& ctx, const Batch&, const models::ModelOutput& out, LossTerms& terms) {
  if (ctx.old_output) terms.emplace_back("kd", kd_weight_ * unbiased_kd(out.logits, ctx.old_output->logits));
}

PLOP::PLOP(Options o)
    : pod_weight_(o.real("pod_weight", 0.01)),
      pod_logits_weight_(o.real("pod_logits_weight", 0.0005)),
      threshold_min_(o.real("threshold_min", 0.001)),
      pseudo_(o.flag("pseudo_labels", true)) {
  const auto names = o.subset("faithful", faithful_names());
  faithful_.entropy = names.count("entropy") > 0;
  faithful_.median = names.count("median") > 0;
  faithful_.ce_mean = names.count("ce_mean") > 0;
  faithful_.pod_regions = names.count("pod_regions") > 0;
  o.finish();
}

void PLOP::on_step_begin(StepContext& ctx) {
  if (ctx.step == 0) return;
  init_new_head_from_background(*ctx.model);
  if (!pseudo_) return;
  // Median uncertainty per class the old model predicts, over the step's background pixels
  // (the reference's median uses 100 bins, cseg's 1000).
  auto hist = torch::zeros({ctx.num_old_classes, faithful_.median ? 100 : 1000}, torch::kLong);
  torch::NoGradGuard no_grad;
  ctx.visit_train_data([&](const Batch& b) {
    auto old_logits = ctx.old_model->forward(b.images).logits;
    add_to_entropy_histogram(hist, b.labels, old_logits, entropy(old_logits, ctx.num_classes, faithful_.entropy));
  });
  thresholds_ =
      faithful_.median ? reference_median_thresholds(hist, threshold_min_) : median_thresholds(hist, threshold_min_);
  if (!torch::isfinite(thresholds_).all().item<bool>())
    log::warn(
        "[plop] the reference's median gives non-finite thresholds ({}): inf accepts every pseudo-label of "
        "its class, NaN none, as in the reference",
        fmt::join(
            std::vector<float>(thresholds_.data_ptr<float>(), thresholds_.data_ptr<float>() + thresholds_.numel()),
            ", "));
}

torch::Tensor PLOP::entropy(const torch::Tensor& old_logits, int64_t num_classes, bool reference) {
  if (!reference) return normalized_entropy(old_logits);
  // The reference: -(1 / log(C_old + 1e-8)) * mean_c p log(p + 1e-8), then over log C_all.
  const int64_t c_old = old_logits.size(1);
  auto p = torch::softmax(old_logits, 1);
  auto e = -(p * torch::log(p + 1e-8)).mean(1) / std::log(double(c_old) + 1e-8);
  return e / std::log(double(num_classes));
}

void PLOP::add_to_entropy_histogram(torch::Tensor& hist, const torch::Tensor& labels, const torch::Tensor& old_logits,
                                    const torch::Tensor& entropy) {
  const int64_t bins = hist.size(1);
  auto background = (labels == 0).flatten();
  auto pred = models::predicted_classes(old_logits).flatten().masked_select(background);
  auto ent = entropy.flatten().masked_select(background);
  auto bin = (ent * double(bins)).to(torch::kLong).clamp(0, bins - 1);
  hist.view(-1).index_add_(0, (pred * bins + bin).cpu(), torch::ones_like(pred).cpu());  // counted on the CPU
}

torch::Tensor PLOP::median_thresholds(const torch::Tensor& hist, double threshold_min) {
  const int64_t classes = hist.size(0), bins = hist.size(1);
  auto thresholds = torch::full({classes}, threshold_min, torch::kFloat);
  auto cum = hist.cumsum(1);
  for (int64_t c = 0; c < classes; ++c) {
    const int64_t total = cum[c][bins - 1].item<int64_t>();
    if (total == 0) continue;  // never predicted: keep the minimum
    // First bin whose cumulative count reaches half the total; its upper edge is the median.
    const int64_t k = (cum[c] < (total + 1) / 2).sum().item<int64_t>();
    thresholds[c] = std::max(threshold_min, double(k + 1) / double(bins));
  }
  return thresholds;
}

torch::Tensor PLOP::reference_median_thresholds(const torch::Tensor& hist, double threshold_min) {
  const int64_t classes = hist.size(0), bins = hist.size(1);
  auto h = hist.to(torch::kLong).contiguous();
  const int64_t* counts = h.data_ptr<int64_t>();
  auto thresholds = torch::empty({classes}, torch::kFloat);
  for (int64_t c = 0; c < classes; ++c) {
    const int64_t* row = counts + c * bins;
    int64_t total = 0;
    for (int64_t b = 0; b < bins; ++b) total += row[b];
    float median = 0.f;  // never predicted: 0, raised to the minimum below
    if (total > 0) {
      // The reference walks the bins with a running sum that adds each bin's position (its
      // lower border times the bin count), not its count, and stops at the first bin whose count
      // reaches from that sum to half the total; the bin index is recomputed from the float
      // border (int(i / bins * bins), one less than i for some i). Without a stop it ends on the
      // last bin with the last position added. Its half, sums and median are float32 tensors.
      const float half = float(total) / 2.f;
      double running = 0, border = 0;
      int64_t bin = 0;
      for (int64_t i = 0; i < bins; ++i) {
        border = double(i) / double(bins);
        bin = int64_t(border * double(bins));
        if (half >= float(running) && half <= float(running) + float(row[bin])) break;
        running += border * double(bins);
      }
      median = float(border) + ((half - float(running)) / float(row[bin])) * float(1.0 / double(bins));
    }
    // Python's max(median, minimum): the minimum only when it is larger (a NaN stays NaN).
    thresholds[c] = float(threshold_min) > median ? float(threshold_min) : median;
  }
  return thresholds;
}

std::pair<torch::Tensor, torch::Tensor> PLOP::pseudo_label(const torch::Tensor& labels, const torch::Tensor& old_logits,
                                                           const torch::Tensor& entropy,
                                                           const torch::Tensor& thresholds) {
  auto old_pred = models::predicted_classes(old_logits);
  auto confident = entropy < thresholds.index({old_pred});
  auto bg = labels == 0;
  auto out = torch::where(bg & confident, old_pred, labels);
  out = torch::where(bg & ~confident, torch::full_like(labels, 255), out);
  // Per image: the share of background pixels that got a confident label.
  auto n_bg = bg.sum({1, 2}).to(torch::kFloat);
  auto n_conf = (bg & confident).sum({1, 2}).to(torch::kFloat);
  auto factor = torch::where(n_bg > 0, n_conf / n_bg.clamp_min(1), torch::ones_like(n_bg));
  return {out, factor};
}

torch::Tensor PLOP::task_loss(StepContext& ctx, const Batch& batch, const models::ModelOutput& out) {
  if (ctx.step == 0 || !pseudo_ || !ctx.old_output) return Method::task_loss(ctx, batch, out);
  const auto& logits = out.logits;
  const auto& old_logits = ctx.old_output->logits;
  auto [labels, factor] =
      pseudo_label(batch.labels, old_logits, entropy(old_logits, ctx.num_classes, faithful_.entropy),
                   thresholds_.to(logits.device()));
  auto per_pixel =
      F::cross_entropy(logits, labels, F::CrossEntropyFuncOptions().ignore_index(255).reduction(torch::kNone));
  auto weighted = per_pixel * factor.view({-1, 1, 1});
  // The reference averages over every pixel (ignored ones add 0); cseg over the labelled ones.
  if (faithful_.ce_mean) return weighted.mean();
  return weighted.sum() / (labels != 255).sum().to(torch::kFloat).clamp_min(1);
}

void PLOP::add_loss_terms(StepContext& ctx, const Batch&, const models::ModelOutput& out, LossTerms& terms) {
  if (!ctx.old_output) return;
  const auto regions = faithful_.pod_regions ? PodRegions::reference : PodRegions::covering;
  std::vector<torch::Tensor> losses;
  for (const auto& tap : ctx.model->stage_taps())
    losses.push_back(pod_weight_ * local_pod(ctx.old_output->feature(tap), out.feature(tap), {1, 2, 4}, regions));
  // Logits: the new classes' channels are summed into the background so the channel counts match.
  auto x = out.feature("logits_lowres");
  const int64_t c_old = ctx.num_old_classes;
  auto merged = torch::cat(
      {x.narrow(1, 0, 1) + x.narrow(1, c_old, x.size(1) - c_old).sum(1, true), x.narrow(1, 1, c_old - 1)}, 1);
  losses.push_back(pod_logits_weight_ *
                   local_pod(ctx.old_output->feature("logits_lowres"), merged, {1, 2, 4}, regions));
  const double adaptive = std::sqrt(double(ctx.num_classes) / double(ctx.num_classes - ctx.num_old_classes));
  terms.emplace_back("pod", adaptive * torch::stack(losses).mean());
}

void PLOP::save(torch::serialize::OutputArchive& a) const {
  if (thresholds_.defined()) a.write("thresholds", thresholds_);
}

void PLOP::load(torch::serialize::InputArchive& a) {
  torch::Tensor t;
  if (a.try_read("thresholds", t)) thresholds_ = t;
}

}  // namespace cseg::methods
