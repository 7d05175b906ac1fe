// PLOP's `faithful` switches against what the reference code computes on the same inputs
// (tests/files/methods/plop_reference.pt, written by tools/make_method_fixtures.py), and by hand.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "../fixtures.h"
#include "cseg/methods/continual_losses.h"
#include "cseg/methods/distillation.h"
#include "cseg/methods/method.h"
#include "cseg/models/segmenter.h"
#include "method_fixture.h"

using namespace cseg;
using namespace cseg::methods;

namespace {
const test::MethodFixture& reference() {
  static const test::MethodFixture r("plop_reference.pt");
  return r;
}

/// Equal where finite (to `tol`), and inf / NaN at the same places.
void expect_same_thresholds(const torch::Tensor& got, const torch::Tensor& want, double tol) {
  ASSERT_EQ(got.sizes(), want.sizes());
  for (int64_t c = 0; c < want.numel(); ++c) {
    const double g = got[c].item<double>(), w = want[c].item<double>();
    SCOPED_TRACE("class " + std::to_string(c));
    if (std::isnan(w))
      EXPECT_TRUE(std::isnan(g)) << g;
    else if (std::isinf(w))
      EXPECT_EQ(g, w);
    else
      EXPECT_NEAR(g, w, tol);
  }
}

PLOP plop_with(const std::string& faithful) { return PLOP(Options("plop", {{"faithful", faithful}})); }
}  // namespace

TEST(PlopReference, FaithfulOptionNamesTheSwitches) {
  auto all = plop_with("all").faithful();
  EXPECT_TRUE(all.entropy && all.median && all.ce_mean && all.pod_regions);
  auto some = plop_with("median, pod_regions").faithful();
  EXPECT_TRUE(!some.entropy && some.median && !some.ce_mean && some.pod_regions);
  auto none = PLOP(Options("plop")).faithful();
  EXPECT_FALSE(none.entropy || none.median || none.ce_mean || none.pod_regions);
  test::expect_error([] { plop_with("median,entropie"); },
                     {"method_options.plop.faithful", "'entropie'", "entropy, median, ce_mean, pod_regions"});
}

TEST(PlopReference, EntropyHistogramAndMedianMatchTheReference) {
  auto r = reference();
  auto old_logits = r["old_logits"], labels = r["labels"];
  const int64_t c_old = old_logits.size(1), c_all = 8;
  auto e = PLOP::entropy(old_logits, c_all, /*reference=*/true);
  EXPECT_LT((e - r["uncertainty"]).abs().max().item<double>(), 1e-7);
  // The reference's scale is C_old log C_all times smaller than H / log C_old, up to the 1e-8 in
  // its logarithm.
  auto ours = PLOP::entropy(old_logits, c_all, false);
  EXPECT_LT((ours / (double(c_old) * std::log(double(c_all))) - e).abs().max().item<double>(), 1e-6);

  auto hist = torch::zeros({c_old, 100}, torch::kLong);
  PLOP::add_to_entropy_histogram(hist, labels, old_logits, e);
  ASSERT_TRUE(torch::equal(hist, r["hist"]));
  expect_same_thresholds(PLOP::reference_median_thresholds(hist, 0.001), r["thresholds"], 1e-7);
  // cseg's median of the same histogram is another number (here the reference stops on an empty
  // bin for one class: NaN).
  EXPECT_FALSE(torch::allclose(PLOP::median_thresholds(hist, 0.001), r["thresholds"], 1e-3, 1e-5, /*equal_nan=*/true));
}

TEST(PlopReference, MedianWalkQuirksMatchTheReference) {
  auto r = reference();
  auto got = PLOP::reference_median_thresholds(r["walks"], 0.001);
  expect_same_thresholds(got, r["walk_thresholds"], 1e-6);
  // By hand. One bin of 1000 at bin 3 (+ 70 later): the sum of positions before it is 0+1+2 = 3,
  // half 535: 0.03 + (535 - 3) / 1000 / 100.
  EXPECT_NEAR(got[1].item<double>(), 0.03 + 532.0 / 1000 / 100, 1e-7);
  // 200 in every bin: the walk never stops (the positions sum to 4950 < half 10000) and ends on
  // bin 99: 0.99 + (10000 - 4950) / 200 / 100 = 1.2425, a threshold above 1.
  EXPECT_NEAR(got[2].item<double>(), 1.2425, 1e-6);
  // The same with an empty last bin: +inf, every pseudo-label of the class accepted.
  EXPECT_TRUE(std::isinf(got[3].item<double>()) && got[3].item<double>() > 0);
  // Half 10 met exactly by the positions 0+1+2+3+4 at an empty bin 5: 0 / 0.
  EXPECT_TRUE(std::isnan(got[4].item<double>()));
  // i = 29 reads bin int(0.29 * 100) = 28 (90 counts): 0.29 + (480 - 406) / 90 / 100.
  EXPECT_NEAR(got[5].item<double>(), 0.29 + 74.0 / 90 / 100, 1e-6);
  // A class never predicted: the minimum.
  EXPECT_FLOAT_EQ(got[6].item<float>(), 0.001f);
}

TEST(PlopReference, PseudoLabelsAndCrossEntropyMatchTheReference) {
  auto r = reference();
  auto old_logits = r["old_logits"], labels = r["labels"], new_logits = r["new_logits"];
  auto thresholds = r["thresholds"];
  auto [pseudo, factor] = PLOP::pseudo_label(labels, old_logits, PLOP::entropy(old_logits, 8, true), thresholds);
  EXPECT_TRUE(torch::equal(pseudo, r["pseudo"]));
  EXPECT_LT((factor - r["factor"]).abs().max().item<double>(), 1e-7);

  // The task loss through the method, thresholds as a checkpoint would restore them.
  auto loss_with = [&](const std::string& faithful) {
    PLOP plop = plop_with(faithful);
    torch::serialize::OutputArchive out;
    out.write("thresholds", thresholds);
    std::stringstream buffer;
    out.save_to(buffer);
    torch::serialize::InputArchive in;
    in.load_from(buffer);
    plop.load(in);
    StepContext ctx;
    ctx.step = 1;
    ctx.num_old_classes = 6;
    ctx.num_classes = 8;
    models::ModelOutput old_out, out_now;
    old_out.logits = old_logits;
    out_now.logits = new_logits;
    ctx.old_output = &old_out;
    Batch batch;
    batch.labels = labels;
    return plop.task_loss(ctx, batch, out_now).item<double>();
  };
  EXPECT_NEAR(loss_with("entropy,ce_mean"), r["ce"].item<double>(), 1e-6);
  // Either switch alone gives another loss: the mean over labelled pixels only is larger, and
  // cseg's entropy scale keeps other pseudo-labels.
  EXPECT_GT(loss_with("entropy"), r["ce"].item<double>() * 1.5);
  EXPECT_GT(std::abs(loss_with("ce_mean") - r["ce"].item<double>()), 1e-4);
}

TEST(PlopReference, PodRegionsMatchTheReference) {
  auto r = reference();
  for (const std::string name : {"square", "uneven", "wide", "tall"}) {
    SCOPED_TRACE(name);
    auto a = r["pod_" + name + "_old"], b = r["pod_" + name + "_new"];
    const double want = r["pod_" + name + "_loss"].item<double>();
    // CPU float maps take the fused kernel, double ones the composite of ATen ops.
    EXPECT_NEAR(local_pod(a, b, {1, 2, 4}, PodRegions::reference).item<double>(), want, 1e-5 * want);
    EXPECT_NEAR(local_pod(a.to(torch::kDouble), b.to(torch::kDouble), {1, 2, 4}, PodRegions::reference).item<double>(),
                want, 1e-6 * want);
    // The covering regions see the positions the reference leaves out (all but the square map).
    const double covering = local_pod(a, b, {1, 2, 4}).item<double>();
    if (name == "square")
      EXPECT_NEAR(covering, want, 1e-5 * want);
    else
      EXPECT_GT(std::abs(covering - want), 1e-4 * want);
  }
  // Both paths give the same gradient.
  auto a = r["pod_wide_old"], b = r["pod_wide_new"];
  auto fast = b.clone().requires_grad_(true), slow = b.to(torch::kDouble).requires_grad_(true);
  local_pod(a, fast, {1, 2, 4}, PodRegions::reference).backward();
  local_pod(a.to(torch::kDouble), slow, {1, 2, 4}, PodRegions::reference).backward();
  EXPECT_LT((fast.grad().to(torch::kDouble) - slow.grad()).abs().max().item<double>(),
            1e-5 * slow.grad().abs().max().item<double>());
  // Positions no region holds get no gradient: a 16 x 9 map's rows 9..15 (the largest square,
  // scale 1, is 9 x 9).
  auto tall_a = r["pod_tall_old"], tall = r["pod_tall_new"].clone().requires_grad_(true);
  local_pod(tall_a, tall, {1, 2, 4}, PodRegions::reference).backward();
  EXPECT_EQ(tall.grad().narrow(2, 9, 7).abs().sum().item<double>(), 0.0);
  EXPECT_GT(tall.grad().narrow(2, 0, 9).abs().sum(3).min().item<double>(), 0.0);
  // A map too short for squares of its width's side: an error, where the reference gets NaN.
  test::expect_error(
      [] {
        local_pod(torch::ones({1, 1, 4, 12}), torch::zeros({1, 1, 4, 12}), {1, 2, 4}, PodRegions::reference);
      },
      {"a map 12 wide has no room along an axis of 4 for region 1 of scale 2", "method_options.plop.faithful"});
}
