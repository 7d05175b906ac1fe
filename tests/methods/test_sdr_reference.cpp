// SDR's `faithful` switches against what the reference code computes on the same inputs
// (tests/files/methods/sdr_reference.pt, written by tools/make_method_fixtures.py), and by hand.
#include <gtest/gtest.h>

#include "../fixtures.h"
#include "cseg/methods/method.h"
#include "cseg/methods/sdr.h"
#include "cseg/models/fast_scnn.h"
#include "method_fixture.h"

using namespace cseg;
using namespace cseg::methods;
using scenarios::Mode;

namespace {
const test::MethodFixture& reference() {
  static const test::MethodFixture r("sdr_reference.pt");
  return r;
}

SDR sdr_with(const std::string& faithful) { return SDR(Options("sdr", {{"faithful", faithful}})); }

struct Case {
  std::string key;
  Mode mode;
  int step;
  std::string labels;
};
const std::vector<Case> cases{{"overlap1", Mode::Overlap, 1, "labels"},
                              {"disjoint1", Mode::Disjoint, 1, "labels"},
                              {"disjoint0", Mode::Disjoint, 0, "labels"},
                              {"sequential1", Mode::Sequential, 1, "labels_seq"}};
constexpr int kClasses = 6, kOld = 4;

double value(const torch::Tensor& t) { return t.item<double>(); }
}  // namespace

TEST(SdrReference, FaithfulOptionNamesTheSwitches) {
  auto all = sdr_with("all").faithful();
  EXPECT_TRUE(all.gather && all.classes && all.attraction_mean && all.repulsion && all.sparsity && all.steps &&
              all.head_init);
  auto some = sdr_with("gather, steps").faithful();
  EXPECT_TRUE(some.gather && some.steps && !some.classes && !some.attraction_mean && !some.repulsion &&
              !some.sparsity && !some.head_init);
  auto none = SDR(Options("sdr")).faithful();
  EXPECT_FALSE(none.gather || none.classes || none.attraction_mean || none.repulsion || none.sparsity || none.steps ||
               none.head_init);
  test::expect_error([] { sdr_with("gather,prototypes"); },
                     {"method_options.sdr.faithful", "'prototypes'", "gather, classes, attraction_mean"});
}

TEST(SdrReference, PrototypeClassesFollowTheCodesModeRule) {
  auto labels = torch::tensor(std::vector<int64_t>{0, 4, 5, 255, 2}).view({1, 1, 5});
  using V = std::vector<int64_t>;
  EXPECT_EQ(SDR::prototype_classes(labels, kClasses, Mode::Overlap, 0, false), (V{2, 4, 5}));
  EXPECT_EQ(SDR::prototype_classes(labels, kClasses, Mode::Overlap, 0, true), (V{2, 4, 5}));
  EXPECT_EQ(SDR::prototype_classes(labels, kClasses, Mode::Disjoint, 0, true), (V{0, 2, 4, 5}));
  EXPECT_EQ(SDR::prototype_classes(labels, kClasses, Mode::Disjoint, 1, true), (V{2, 4, 5}));
  EXPECT_EQ(SDR::prototype_classes(labels, kClasses, Mode::Sequential, 1, true), (V{0, 2, 4, 5}));
  // Without background in the batch the code drops the first foreground class instead.
  auto no_background = torch::tensor(std::vector<int64_t>{4, 5, 255}).view({1, 1, 3});
  EXPECT_EQ(SDR::prototype_classes(no_background, kClasses, Mode::Overlap, 1, true), (V{5}));
  EXPECT_EQ(SDR::prototype_classes(no_background, kClasses, Mode::Overlap, 1, false), (V{4, 5}));
}

TEST(SdrReference, GatherMixesChannelsOnlyForSeveralImages) {
  auto f = torch::arange(2 * 3 * 2 * 2, torch::kFloat).view({2, 3, 2, 2});
  auto mask = torch::zeros({2, 2, 2}, torch::kBool);
  mask[0][0][1] = true;
  mask[1][1][0] = true;
  // Pixel (0, 0, 1) has channels 1, 5, 9; pixel (1, 1, 0) has 14, 18, 22.
  auto right = SDR::class_features(f, mask, false);
  EXPECT_TRUE(torch::equal(right, torch::tensor({1.f, 14.f, 5.f, 18.f, 9.f, 22.f}).view({3, 2})));
  auto mixed = SDR::class_features(f, mask, true);
  EXPECT_TRUE(torch::equal(mixed, torch::tensor({1.f, 5.f, 9.f, 14.f, 18.f, 22.f}).view({3, 2})));
  // One image: the two agree.
  auto one = f.narrow(0, 0, 1), one_mask = mask.narrow(0, 0, 1).clone();
  one_mask[0][1][1] = true;
  EXPECT_TRUE(torch::equal(SDR::class_features(one, one_mask, false), SDR::class_features(one, one_mask, true)));
}

TEST(SdrReference, PrototypesAndLossesMatchTheReference) {
  auto r = reference();
  auto f = r["features"];
  const auto all = sdr_with("all").faithful();
  const SDR::Faithful own;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.key);
    auto labels = r[c.labels];
    auto p = r["prototypes"].clone();
    auto n = r["counts"].to(torch::kFloat);
    SDR::update_prototypes(p, n, f, labels, SDR::prototype_classes(labels, kClasses, c.mode, c.step, true), true);
    EXPECT_LT((p - r[c.key + "_prototypes"]).abs().max().item<double>(), 1e-6);
    EXPECT_TRUE(torch::equal(n, r[c.key + "_counts"].to(torch::kFloat)));

    auto [attraction, repulsion] = SDR::clustering(f, labels, p, n, all);
    EXPECT_NEAR(value(attraction), value(r[c.key + "_attraction"]), 1e-6);
    EXPECT_NEAR(value(repulsion), value(r[c.key + "_repulsion"]), 1e-5);
    auto matching = SDR::matching(f, r[c.key + "_located"], p, n, kOld, all);
    EXPECT_NEAR(value(matching), value(r[c.key + "_matching"]), 1e-6);

    // cseg's own computations give other numbers on this batch of three images, so a switch
    // that changed nothing would fail above.
    auto [own_attraction, own_repulsion] = SDR::clustering(f, labels, p, n, own);
    EXPECT_GT(std::abs(value(own_attraction) - value(r[c.key + "_attraction"])), 1e-3);
    EXPECT_GT(std::abs(value(own_repulsion) - value(r[c.key + "_repulsion"])), 1e-2);
    EXPECT_GT(std::abs(value(SDR::matching(f, r[c.key + "_located"], p, n, kOld, own)) - value(r[c.key + "_matching"])),
              1e-3);
  }
  // Each switch on its own moves the clustering terms away from cseg's.
  auto labels = r["labels"];
  auto p = r["overlap1_prototypes"], n = r["overlap1_counts"].to(torch::kFloat);
  auto [base_a, base_r] = SDR::clustering(f, labels, p, n, own);
  for (const std::string name : {"gather", "classes", "attraction_mean", "repulsion"}) {
    SCOPED_TRACE(name);
    auto [a, rep] = SDR::clustering(f, labels, p, n, sdr_with(name).faithful());
    EXPECT_GT(std::abs(value(a) - value(base_a)) + std::abs(value(rep) - value(base_r)), 1e-4);
  }
}

TEST(SdrReference, SparsityMatchesTheReference) {
  auto r = reference();
  auto f = r["features"];
  EXPECT_NEAR(value(SDR::sparsity(f, r["labels"], kClasses, true)), value(r["sparsity"]), 1e-5);
  EXPECT_NEAR(value(SDR::sparsity(f, torch::zeros_like(r["labels"]), kClasses, true)), value(r["sparsity_background"]),
              0.0);
  // cseg's: foreground classes only, averaged per class; 0 on a background-only batch.
  EXPECT_GT(std::abs(value(SDR::sparsity(f, r["labels"], kClasses, false)) - value(r["sparsity"])), 1e-2);
  EXPECT_EQ(value(SDR::sparsity(f, torch::zeros_like(r["labels"]), kClasses, false)), 0.0);
}

TEST(SdrReference, HeadInitSwitchKeepsTheNewHeadsRandom) {
  for (const std::string faithful : {"head_init", "none"}) {
    SCOPED_TRACE(faithful);
    models::FastScnn model(models::FastScnnOptions{{3}, true, 0.0});
    model.add_head(2);
    torch::NoGradGuard no_grad;
    auto x = torch::randn({1, 3, 64, 64});
    model.eval();
    auto before = model.forward(x).logits.narrow(1, 3, 2).clone();
    auto sdr = sdr_with(faithful);
    StepContext ctx;
    ctx.step = 1;
    ctx.num_old_classes = 3;
    ctx.num_classes = 5;
    ctx.model = &model;
    sdr.on_step_begin(ctx);
    auto after = model.forward(x).logits.narrow(1, 3, 2);
    EXPECT_EQ(torch::equal(before, after), faithful == "head_init");
  }
}

TEST(SdrReference, StepsSwitchLeavesStepZeroWithoutClustering) {
  auto r = reference();
  models::ModelOutput out;
  out.features["encoder"] = r["features"];
  Batch batch;
  batch.labels = r["labels"];  // already at the features' resolution
  for (const std::string faithful : {"steps", "none"}) {
    for (int step : {0, 1}) {
      SCOPED_TRACE(faithful + ", step " + std::to_string(step));
      auto sdr = sdr_with(faithful);
      StepContext ctx;
      ctx.step = step;
      ctx.num_old_classes = step == 0 ? 0 : kOld;
      ctx.num_classes = kClasses;
      LossTerms terms;
      sdr.add_loss_terms(ctx, batch, out, terms);
      std::map<std::string, double> t;
      for (const auto& [name, v] : terms) t[name] = v.item<double>();
      const bool skipped = faithful == "steps" && step == 0;
      EXPECT_EQ(t.at("attraction") == 0.0, skipped);
      EXPECT_EQ(t.at("repulsion") == 0.0, skipped);
      EXPECT_GT(t.at("sparsity"), 0.0);
      // The prototypes are updated either way.
      EXPECT_GT(sdr.counts()[4].item<double>(), 0.0);
    }
  }
}
