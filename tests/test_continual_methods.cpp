// The continual methods: each loss on tiny tensors against hand-derived values, the invariants the
// papers rely on, and a two-step run of every method through the trainer.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <set>

#include "cseg/core/files.h"
#include "cseg/engine/checkpoint.h"
#include "cseg/engine/trainer.h"
#include "cseg/methods/continual_losses.h"
#include "cseg/methods/distillation.h"
#include "cseg/methods/regularizers.h"
#include "cseg/methods/rehearsal.h"
#include "cseg/methods/sdr.h"
#include "cseg/methods/ssul.h"
#include "cseg/methods/bacs.h"
#include "cseg/models/fast_scnn.h"
#include "fixtures.h"
#include "tiny_experiment.h"

using namespace cseg;
using namespace cseg::methods;
namespace F = torch::nn::functional;

namespace {
/// One pixel with the given channel values: [1, C, 1, 1].
torch::Tensor pixel(std::vector<float> v) { return torch::tensor(v).view({1, -1, 1, 1}); }
torch::Tensor label(int64_t v) { return torch::full({1, 1, 1}, v, torch::kLong); }
}  // namespace

TEST(ContinualLosses, LwfKdByHand) {
  // q = softmax(0, 0) = (1/2, 1/2); p = softmax(0, log 3) = (1/4, 3/4); the third channel is new.
  // loss = -mean_c q_c log p_c = -(0.5 log(1/4) + 0.5 log(3/4)) / 2 = 0.4184936
  auto loss = lwf_kd(pixel({0.f, std::log(3.f), 5.f}), pixel({0.f, 0.f}));
  EXPECT_NEAR(loss.item<double>(), 0.4184936, 1e-6);
  // Identical old and current logits still cost their entropy (not 0): log 2 / 2.
  EXPECT_NEAR(lwf_kd(pixel({1.f, 1.f}), pixel({1.f, 1.f})).item<double>(), std::log(2.0) / 2, 1e-6);
}

TEST(ContinualLosses, UnbiasedCrossEntropyByHandAndInvariant) {
  // x = (0, 0, 0), two old classes, target 1 (an old class: background now).
  // log p(bg) = logsumexp(0, 0) - logsumexp(0, 0, 0) = log(2/3); loss = 0.4054651
  EXPECT_NEAR(unbiased_ce(pixel({0.f, 0.f, 0.f}), label(1), 2).item<double>(), 0.4054651, 1e-6);
  // A new class: target 2, log p = 0 - log 3.
  EXPECT_NEAR(unbiased_ce(pixel({0.f, 0.f, 0.f}), label(2), 2).item<double>(), std::log(3.0), 1e-6);
  // With no old class but the background, it is plain cross-entropy.
  torch::manual_seed(0);
  auto x = torch::randn({2, 4, 3, 5});
  auto t = torch::randint(0, 4, {2, 3, 5}, torch::kLong);
  t[0][0][0] = 255;
  auto ce = F::cross_entropy(x, t, F::CrossEntropyFuncOptions().ignore_index(255));
  EXPECT_NEAR(unbiased_ce(x, t, 1).item<double>(), ce.item<double>(), 1e-6);
  EXPECT_NEAR(unbiased_ce(x, t, 0).item<double>(), ce.item<double>(), 1e-6);
}

TEST(ContinualLosses, UnbiasedDistillationByHand) {
  // q = (1/2, 1/2) over (bg, old class 1); x = (0, 0, 0) with class 2 new.
  // log p(bg or new) = log(2/3), log p(1) = log(1/3);
  // loss = -(0.5 log(2/3) + 0.5 log(1/3)) / 2 = 0.3760193
  EXPECT_NEAR(unbiased_kd(pixel({0.f, 0.f, 0.f}), pixel({0.f, 0.f})).item<double>(), 0.3760193, 1e-6);
}

namespace {
/// Value and gradient of a loss of the logits x.
std::pair<double, torch::Tensor> value_and_grad(const torch::Tensor& x, const std::function<torch::Tensor(const torch::Tensor&)>& loss) {
  auto leaf = x.detach().clone().requires_grad_();
  auto l = loss(leaf);
  l.backward();
  return {l.item<double>(), leaf.grad().to(torch::kDouble)};
}
}  // namespace

// On CPU float32 logits MiB's losses run a fused kernel (value and gradient in one pass); any
// other type runs the composite of ATen ops. The composite in double is the reference: values
// and gradients agree, with ignored pixels, logits far apart (softmax underflows for a whole
// group of channels) and a batch of several images.
TEST(ContinualLosses, FusedUnbiasedLossesMatchTheCompositeReference) {
  torch::manual_seed(3);
  auto x = 4 * torch::randn({3, 7, 9, 11});
  auto x_old = 4 * torch::randn({3, 4, 9, 11});
  auto t = torch::randint(0, 7, {3, 9, 11}, torch::kLong);
  t.masked_fill_(torch::rand({3, 9, 11}) < 0.2, 255);
  // Pixel (0, 0, 0): every old channel 120 below a new one; pixel (1, 2, 3): background and
  // new channels 120 below an old one, for the distillation's background group.
  x.index_put_({0, torch::indexing::Slice(0, 4), 0, 0}, -120.f);
  x.index_put_({0, 5, 0, 0}, 0.f);
  t.index_put_({0, 0, 0}, 0);
  x.index_put_({1, 0, 2, 3}, -120.f);
  x.index_put_({1, torch::indexing::Slice(4, 7), 2, 3}, -120.f);
  x.index_put_({1, 2, 2, 3}, 0.f);
  for (int num_old : {1, 2, 4}) {
    auto [v, g] = value_and_grad(x, [&](const torch::Tensor& a) { return unbiased_ce(a, t, num_old); });
    auto [rv, rg] = value_and_grad(x.to(torch::kDouble), [&](const torch::Tensor& a) { return unbiased_ce(a, t, num_old); });
    EXPECT_NEAR(v, rv, 1e-5 * std::abs(rv) + 1e-7) << "num_old " << num_old;
    EXPECT_LT((g - rg).abs().max().item<double>(), 1e-7) << "num_old " << num_old;
    EXPECT_GT(rg.abs().max().item<double>(), 1e-4);
  }
  for (int c_old : {1, 3, 4}) {
    auto old = x_old.narrow(1, 0, c_old);
    auto [v, g] = value_and_grad(x, [&](const torch::Tensor& a) { return unbiased_kd(a, old); });
    auto [rv, rg] = value_and_grad(x.to(torch::kDouble), [&](const torch::Tensor& a) { return unbiased_kd(a, old.to(torch::kDouble)); });
    EXPECT_NEAR(v, rv, 1e-5 * std::abs(rv) + 1e-7) << "c_old " << c_old;
    EXPECT_LT((g - rg).abs().max().item<double>(), 1e-7) << "c_old " << c_old;
  }
  // As many old channels as channels: the distillation's background group is channel 0 alone.
  auto [v, g] = value_and_grad(x.narrow(1, 0, 4), [&](const torch::Tensor& a) { return unbiased_kd(a, x_old); });
  auto [rv, rg] = value_and_grad(x.narrow(1, 0, 4).to(torch::kDouble),
                                 [&](const torch::Tensor& a) { return unbiased_kd(a, x_old.to(torch::kDouble)); });
  EXPECT_NEAR(v, rv, 1e-5 * std::abs(rv) + 1e-7);
  EXPECT_LT((g - rg).abs().max().item<double>(), 1e-7);
  // The gradient scales with the incoming gradient (a loss weight), as autograd's would.
  auto leaf = x.clone().requires_grad_();
  (10 * unbiased_kd(leaf, x_old)).backward();
  auto [v1, g1] = value_and_grad(x, [&](const torch::Tensor& a) { return unbiased_kd(a, x_old); });
  EXPECT_LT((leaf.grad().to(torch::kDouble) - 10 * g1).abs().max().item<double>(), 1e-8);
}

TEST(ContinualLosses, UnbiasedLossesRejectLabelsAndShapesThatDoNotFit) {
  auto x = torch::zeros({1, 3, 2, 2});
  auto t = torch::full({1, 2, 2}, 7, torch::kLong);
  test::expect_error([&] { unbiased_ce(x, t, 2); }, {"label 7 is neither a class (0..2) nor 255"});
  test::expect_error([&] { unbiased_kd(x, torch::zeros({1, 4, 2, 2})); }, {"old logits [1, 4, 2, 2] do not fit"});
}

TEST(ContinualLosses, LwfMcByHand) {
  // One-hot BCE: x = (0, 0), target 1: 2 classes x log 2 (sigmoid(0) = 1/2 for both) = 2 log 2.
  EXPECT_NEAR(onehot_bce(pixel({0.f, 0.f}), label(1)).item<double>(), 2 * std::log(2.0), 1e-6);
  EXPECT_NEAR(onehot_bce(pixel({0.f, 0.f}), label(255)).item<double>(), 0.0, 1e-12);  // ignored pixel
  // Sigmoid distillation, one channel: target sigmoid(0) = 1/2, x = 0: BCE = log 2.
  EXPECT_NEAR(sigmoid_kd(pixel({0.f, 7.f}), pixel({0.f})).item<double>(), std::log(2.0), 1e-6);
}

TEST(ContinualLosses, LocalPodByHandAndZeroForIdenticalMaps) {
  // old = 0, new = 1 on a 1 x 2 x 2 map. Scale 1: width-pooled (2 values) + height-pooled (2):
  // 4 differences of 1 -> norm 2. Scale 2 adds 4 regions x (1 + 1) values -> sqrt(12).
  auto a = torch::zeros({1, 1, 2, 2}), b = torch::ones({1, 1, 2, 2});
  EXPECT_NEAR(local_pod(a, b, {1}).item<double>(), 2.0, 1e-6);
  EXPECT_NEAR(local_pod(a, b, {1, 2}).item<double>(), std::sqrt(12.0), 1e-6);
  // Squared maps: the sign does not matter.
  EXPECT_NEAR(local_pod(a, -b, {1}).item<double>(), 2.0, 1e-6);
  auto m = torch::randn({2, 3, 5, 7});
  EXPECT_EQ(local_pod(m, m).item<double>(), 0.0);
  // Non-square and maps smaller than the grid work (regions never empty).
  auto small = torch::randn({2, 3, 1, 3});
  EXPECT_GT(local_pod(small, small * 2).item<double>(), 0.0);
  // A 2 x 4 map at scale 2 has 1 x 2 regions: new = 1 everywhere vs 0 -> per region 1 + 2 values,
  // 4 regions -> 12, plus scale 1: 2 + 4 = 6 -> sqrt(18).
  EXPECT_NEAR(local_pod(torch::zeros({1, 1, 2, 4}), torch::ones({1, 1, 2, 4}), {1, 2}).item<double>(), std::sqrt(18.0), 1e-6);
}

TEST(ContinualLosses, LocalPodMatchesARegionByRegionComputation) {
  // PLOP's definition written out slowly: each region of each scale pooled on its own.
  auto slow = [](const torch::Tensor& old_map, const torch::Tensor& new_map, const std::vector<int>& scales) {
    auto embed = [&](const torch::Tensor& m) {
      const int64_t n = m.size(0), h = m.size(2), w = m.size(3);
      auto bound = [](int64_t i, int64_t s, int64_t len) {
        const int64_t lo = std::min(i * len / s, len - 1);
        return std::make_pair(lo, std::max(lo + 1, std::min(((i + 1) * len + s - 1) / s, len)));
      };
      std::vector<torch::Tensor> parts;
      for (int s : scales)
        for (int i = 0; i < s; ++i)
          for (int j = 0; j < s; ++j) {
            const auto [y0, y1] = bound(i, s, h);
            const auto [x0, x1] = bound(j, s, w);
            auto region = m.slice(2, y0, y1).slice(3, x0, x1);
            parts.push_back(region.mean(3).reshape({n, -1}));
            parts.push_back(region.mean(2).reshape({n, -1}));
          }
      return torch::cat(parts, 1);
    };
    return (embed(old_map.pow(2)) - embed(new_map.pow(2))).norm(2, 1).mean();
  };
  torch::manual_seed(3);
  for (auto shape : std::vector<std::vector<int64_t>>{{2, 3, 5, 7}, {1, 4, 12, 12}, {2, 2, 3, 12}, {1, 3, 1, 3}}) {
    auto a = torch::randn(shape), b = torch::randn(shape).requires_grad_(true);
    auto b_ref = b.detach().to(torch::kDouble).requires_grad_(true);
    auto fast = local_pod(a, b, {1, 2, 4});
    auto reference = slow(a.to(torch::kDouble), b_ref, {1, 2, 4});
    EXPECT_NEAR(fast.item<double>(), reference.item<double>(), 1e-5 * (1 + reference.item<double>()))
        << shape[2] << "x" << shape[3];
    fast.backward();
    reference.backward();
    EXPECT_LT((b.grad().to(torch::kDouble) - b_ref.grad()).abs().max().item<double>(),
              1e-5 * (1 + b_ref.grad().abs().max().item<double>()))
        << shape[2] << "x" << shape[3];
    EXPECT_GT(b.grad().abs().sum().item<double>(), 0);
    // CPU float maps take a fused kernel; other types (double here, or any map on a GPU) the
    // composite of ATen ops: both against the region-by-region definition.
    auto b_composite = b_ref.detach().clone().requires_grad_(true);
    auto composite = local_pod(a.to(torch::kDouble), b_composite, {1, 2, 4});
    EXPECT_NEAR(composite.item<double>(), reference.item<double>(), 1e-6 * (1 + reference.item<double>()));  // float pooling weights
    composite.backward();
    EXPECT_LT((b_composite.grad() - b_ref.grad()).abs().max().item<double>(), 1e-6 * (1 + b_ref.grad().abs().max().item<double>()));
  }
  // A teacher's channels-last map gives the same loss.
  auto a = torch::randn({2, 3, 5, 7}), b = torch::randn({2, 3, 5, 7});
  EXPECT_NEAR(local_pod(a.contiguous(torch::MemoryFormat::ChannelsLast), b).item<double>(), local_pod(a, b).item<double>(), 1e-6);
  // Maps that pool alike: loss 0 and a zero gradient, not NaN (the norm's kink).
  auto same = a.clone().requires_grad_(true);
  auto zero = local_pod(a, same);
  zero.backward();
  EXPECT_EQ(zero.item<double>(), 0.0);
  EXPECT_EQ(same.grad().abs().sum().item<double>(), 0.0);
  // Only the second image differs: the first's gradient is 0, the second's is its own loss's
  // halved (batch mean), and a loss weight scales it.
  auto pair = a.clone().index_put_({1}, a[1] + 0.5).requires_grad_(true);
  (0.25 * local_pod(a, pair)).backward();
  auto second = a[1].unsqueeze(0).to(torch::kDouble), second_new = pair.detach()[1].unsqueeze(0).to(torch::kDouble).requires_grad_(true);
  slow(second, second_new, {1, 2, 4}).backward();
  EXPECT_EQ(pair.grad()[0].abs().sum().item<double>(), 0.0);
  EXPECT_LT((pair.grad()[1].to(torch::kDouble) - 0.125 * second_new.grad()[0]).abs().max().item<double>(),
            1e-6 * (1 + second_new.grad().abs().max().item<double>()));
}

TEST(ContinualLosses, MibInitialisationSplitsTheBackgroundEvenly) {
  models::FastScnn model(models::FastScnnOptions{{3}, true, 0.0});
  model.eval();
  torch::NoGradGuard no_grad;
  auto x = torch::randn({1, 3, 64, 64});
  auto before = torch::softmax(model.forward(x).logits, 1);
  model.add_head(2);
  init_new_head_from_background(model);
  auto after = torch::softmax(model.forward(x).logits, 1);
  // bg and the 2 new classes share the old background probability in three equal parts.
  EXPECT_TRUE(torch::allclose(after.select(1, 0), after.select(1, 3), 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(after.select(1, 0), after.select(1, 4), 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(after.select(1, 0) * 3, before.select(1, 0), 1e-4, 1e-6));
  // Old classes keep their probability.
  EXPECT_TRUE(torch::allclose(after.narrow(1, 1, 2), before.narrow(1, 1, 2), 1e-4, 1e-6));
}

TEST(ContinualLosses, PlopPseudoLabelsByHand) {
  // Three pixels: background with a confident old prediction (class 1), background with a
  // uniform (uncertain) old prediction, and a pixel of the new class 3.
  auto labels = torch::tensor({int64_t(0), int64_t(0), int64_t(3)}).view({1, 1, 3});
  // old[0, c, 0, p]: pixel 0 -> (0, 10, 0), pixels 1 and 2 -> (0, 0, 0).
  auto old = torch::stack({torch::tensor({0.f, 0.f, 0.f}), torch::tensor({10.f, 0.f, 0.f}), torch::tensor({0.f, 0.f, 0.f})})
            .view({1, 3, 1, 3});
  auto thresholds = torch::full({3}, 0.5f);
  auto [pseudo, factor] = PLOP::pseudo_label(labels, old, normalized_entropy(old), thresholds);
  EXPECT_EQ(pseudo[0][0][0].item<int64_t>(), 1);    // confident: the old prediction
  EXPECT_EQ(pseudo[0][0][1].item<int64_t>(), 255);  // normalised entropy 1 >= 0.5: ignored
  EXPECT_EQ(pseudo[0][0][2].item<int64_t>(), 3);    // labelled pixels keep their label
  EXPECT_FLOAT_EQ(factor[0].item<float>(), 0.5f);   // 1 of 2 background pixels is confident
  // Normalised entropy: uniform = 1.
  EXPECT_NEAR(normalized_entropy(pixel({0.f, 0.f, 0.f})).item<double>(), 1.0, 1e-6);
}

// PLOP's thresholds: per class the median of the old model's normalised entropy over the
// background pixels it predicts as that class; pixels of the step's own classes do not count.
TEST(ContinualLosses, PlopThresholdsAreMediansOverBackgroundPixels) {
  torch::manual_seed(5);
  // Six pixels, three old classes; class 1 predicted everywhere with growing confidence, except
  // the last pixel, a new-class pixel (label 3) that is the most confident of all.
  auto logits = torch::zeros({1, 3, 1, 6});
  for (int64_t i = 0; i < 6; ++i) logits[0][1][0][i] = i < 5 ? 1.0 + 0.5 * double(i) : 9.0;
  auto labels = torch::tensor({0, 0, 0, 0, 0, 3}, torch::kLong).view({1, 1, 6});
  auto hist = torch::zeros({3, 1000}, torch::kLong);
  PLOP::add_to_entropy_histogram(hist, labels, logits, PLOP::entropy(logits, 5, false));
  EXPECT_EQ(hist.sum().item<int64_t>(), 5);  // background pixels only
  auto ent = normalized_entropy(logits).flatten();
  // Median of the five background entropies: the third smallest (entropies fall as i grows).
  const double median = ent[2].item<double>();
  auto t = PLOP::median_thresholds(hist, 0.001);
  EXPECT_NEAR(t[1].item<double>(), (std::floor(median * 1000) + 1) / 1000, 1e-6);
  EXPECT_FLOAT_EQ(t[0].item<float>(), 0.001f);  // never predicted: the minimum
  EXPECT_FLOAT_EQ(t[2].item<float>(), 0.001f);
  // Counting the new-class pixel too would move the median to the fourth pixel's bin.
  EXPECT_NE(std::floor(ent[2].item<double>() * 1000), std::floor(ent[3].item<double>() * 1000));
  // The floor applies to a confident class.
  EXPECT_FLOAT_EQ(PLOP::median_thresholds(hist, 0.9)[1].item<float>(), 0.9f);
}

TEST(ContinualLosses, RegularizerPenaltyAndNormalisation) {
  models::FastScnn model(models::FastScnnOptions{{3}, false, 0.0});
  ParameterRegularizer::TensorMap old, importance;
  for (const auto& p : model.named_parameters()) {
    old[p.key()] = p.value().detach().clone();
    importance[p.key()] = torch::ones_like(p.value());
  }
  // At the old parameters the penalty is 0.
  EXPECT_EQ(ParameterRegularizer::penalty(model, importance, old).item<double>(), 0.0);
  // Moving one weight by 1 and another by 2 with importances 1 and 0.5: 1 + 0.5 * 4 = 3.
  const std::string a = "classifier.heads.0.bias";
  auto moved = old;
  moved[a] = old[a].clone();
  moved[a][0] -= 1.0;
  moved[a][1] -= 2.0;
  importance[a] = torch::tensor({1.f, 0.5f, 0.f});
  EXPECT_NEAR(ParameterRegularizer::penalty(model, importance, moved).item<double>(), 3.0, 1e-5);
  // Min-max normalisation over all tensors together.
  auto n = ParameterRegularizer::normalized({{"x", torch::tensor({2.f, 4.f})}, {"y", torch::tensor({6.f})}});
  EXPECT_NEAR(n["x"][0].item<float>(), 0.0, 1e-6);
  EXPECT_NEAR(n["x"][1].item<float>(), 0.5, 1e-6);
  EXPECT_NEAR(n["y"][0].item<float>(), 1.0, 1e-6);
}

TEST(ContinualMethods, UnknownOptionsFailByName) {
  test::expect_error([] { make_method("mib", {{"kd_wieght", "3"}}); }, {"method_options.mib.kd_wieght", "kd_weight"});
  test::expect_error([] { make_method("ewc", {{"weight", "lots"}}); }, {"method_options.ewc.weight", "expected a number"});
  test::expect_error([] { make_method("finetune", {{"x", "1"}}); }, {"method_options.finetune.x"});
}

// Every method trains two steps (3 classes, then 2) and evaluates, with its loss terms logged.
TEST(ContinualMethods, EveryMethodTrainsTwoSteps) {
  test::TempDir d;
  test::write_tiny_dataset(d / "data");
  const std::map<std::string, std::vector<std::string>> terms{
      {"lwf", {"kd"}}, {"lwf_mc", {"bce", "kd"}}, {"ilt", {"kd", "feature_kd"}}, {"mib", {"kd"}}, {"plop", {"pod"}},
      {"ewc", {"ewc"}}, {"pi", {"pi"}},    {"rw", {"rw"}},  {"replay", {}}, {"der", {"der"}},
      {"der++", {"der", "der_ce"}}, {"sdr", {"kd", "attraction", "repulsion", "sparsity", "matching"}}, {"ssul", {"bce"}}, {"ssul-m", {"bce"}}, {"bacs", {"detector", "der", "der_ce"}},
      {"latent_replay", {"latent_replay"}}, {"plop faithful", {"pod"}}, {"dft_star", {}},
      {"sdr faithful", {"kd", "attraction", "repulsion", "sparsity", "matching"}}};
  // Runs with options: the label's first word is the method.
  // (PLOP's reference regions need maps at least 4 wide: Fast-SCNN's 1 x 1 global features of a
  // 32 x 32 crop are an error there, tested in test_plop_reference.cpp.)
  const std::map<std::string, std::map<std::string, std::string>> options{
      {"plop faithful", {{"faithful", "entropy,median,ce_mean"}}}, {"sdr faithful", {{"faithful", "all"}}}};
  for (const auto& [name, expected] : terms) {
    SCOPED_TRACE(name);
    auto cfg = test::tiny_config((d / "data").string(), (d / name).string(), 3);
    auto data = engine::open_experiment_data(cfg, "", 1);
    auto given = options.find(name);
    auto method = make_method(name.substr(0, name.find(' ')), given == options.end() ? std::map<std::string, std::string>{} : given->second);
    auto r = engine::Trainer(cfg, data, *method, (d / name).string()).run();
    ASSERT_EQ(r["steps"].size(), 2u);
    EXPECT_TRUE(std::isfinite(r["steps"][1]["test"]["miou"].get<double>()));
    // Step 1's logged iterations carry the method's terms, finite.
    std::ifstream in(d / name / "metrics.jsonl");
    std::string line;
    bool seen = false;
    while (std::getline(in, line)) {
      auto j = nlohmann::json::parse(line);
      if (!j.contains("iteration") || j["step"] != 1) continue;
      for (const auto& t : expected) {
        ASSERT_TRUE(j.contains("loss_" + t)) << line;
        EXPECT_TRUE(std::isfinite(j["loss_" + t].get<double>())) << line;
      }
      seen = true;
    }
    EXPECT_TRUE(seen);
  }
}

namespace {
/// A step-1 batch of four empty 32 x 32 crops, for replay to append to.
Batch four_crops() {
  Batch b;
  b.images = torch::zeros({4, 3, 32, 32});
  b.labels = torch::zeros({4, 32, 32}, torch::kLong);
  b.ids = {"a", "b", "c", "d"};
  b.indices = {0, 1, 2, 3};
  return b;
}

ReplayItem crop(int cls, double priority = 0, float embed = 0) {
  ReplayItem it;
  it.image = torch::full({3, 4, 4}, float(cls));
  it.label = torch::full({4, 4}, int64_t(cls));
  it.label[0][0] = 0;
  it.priority = priority;
  it.embedding = torch::tensor({1.0f, embed});
  return it;
}

/// `into` after loading what `buffer` saved, through a checkpoint file.
ReplayBuffer reloaded(const ReplayBuffer& buffer, ReplayBuffer into) {
  torch::serialize::OutputArchive out;
  buffer.save(out);
  test::TempDir d;
  out.save_to((d / "b.pt").string());
  torch::serialize::InputArchive in;
  in.load_from((d / "b.pt").string());
  into.load(in);
  return into;
}
}  // namespace

TEST(ReplayBuffer, PoliciesSelectionBytesAndCheckpoint) {
  // Reservoir: never more than the capacity, uniform over everything offered.
  ReplayBuffer res({3, "reservoir", "random", 1});
  std::vector<ReplayItem> ten;
  for (int i = 0; i < 10; ++i) ten.push_back(crop(1 + i % 2));
  res.add(ten, 0, 1);
  EXPECT_EQ(res.size(), 3u);
  // A crop is float16 3x4x4 (96 bytes) + uint8 4x4 labels (16 bytes).
  EXPECT_EQ(res.bytes(), 3 * (96 + 16));

  // Class-balanced: step 0 has classes 1 (6 crops) and 2 (2 crops), capacity 4 -> 2 + 2;
  // step 1 adds class 3 -> round-robin quotas 2, 1, 1.
  ReplayBuffer cb({4, "class_balanced", "random", 1});
  std::vector<ReplayItem> s0;
  for (int i = 0; i < 6; ++i) s0.push_back(crop(1));
  for (int i = 0; i < 2; ++i) s0.push_back(crop(2));
  s0.push_back(crop(0));  // background only: not stored
  cb.add(s0, 0, 1);
  std::map<int, int> per_class;
  for (size_t i = 0; i < cb.size(); ++i) ++per_class[cb[i].group];
  EXPECT_EQ(per_class, (std::map<int, int>{{1, 2}, {2, 2}}));
  std::vector<ReplayItem> s1;
  for (int i = 0; i < 5; ++i) s1.push_back(crop(3));
  cb.add(s1, 1, 3);
  per_class.clear();
  for (size_t i = 0; i < cb.size(); ++i) ++per_class[cb[i].group];
  EXPECT_EQ(per_class, (std::map<int, int>{{1, 2}, {2, 1}, {3, 1}}));
  EXPECT_EQ(cb.per_step(), (std::map<int, int>{{0, 3}, {1, 1}}));

  // Experience-balanced with uncertainty selection keeps the most uncertain crops of each step.
  ReplayBuffer eb({2, "experience_balanced", "uncertainty", 1});
  eb.add({crop(1, 0.1), crop(1, 0.9), crop(2, 0.5)}, 0, 1);
  EXPECT_EQ(eb.size(), 2u);
  EXPECT_DOUBLE_EQ(eb[0].priority, 0.9);
  EXPECT_DOUBLE_EQ(eb[1].priority, 0.5);
  eb.add({crop(3, 0.2)}, 1, 3);
  EXPECT_EQ(eb.per_step(), (std::map<int, int>{{0, 1}, {1, 1}}));
  EXPECT_DOUBLE_EQ(eb[0].priority, 0.9);  // the step keeps its best crop

  // Herding: the first crop chosen is the one closest to the group's mean embedding.
  ReplayBuffer hb({1, "experience_balanced", "herding", 1});
  hb.add({crop(1, 0, 3.0f), crop(1, 0, 0.1f), crop(1, 0, -3.0f)}, 0, 1);
  EXPECT_NEAR(hb[0].embedding[1].item<float>(), 0.1f, 1e-6);

  // Checkpoint round trip.
  auto back = reloaded(cb, ReplayBuffer({4, "class_balanced", "random", 1}));
  ASSERT_EQ(back.size(), cb.size());
  for (size_t i = 0; i < cb.size(); ++i) {
    EXPECT_TRUE(torch::equal(back[i].image, cb[i].image));
    EXPECT_EQ(back[i].group, cb[i].group);
  }
  // Draws are distinct and reproducible.
  EXPECT_EQ(cb.draw(3, 7), cb.draw(3, 7));
  auto all = cb.draw(10, 7);
  EXPECT_EQ(std::set<size_t>(all.begin(), all.end()).size(), 4u);
}

// Logits are stored as float16, whose largest finite value is 65504: larger ones (a model whose
// norm statistics are far off) keep float32 instead of turning into inf DER targets.
TEST(ReplayBuffer, LogitsBeyondFloat16KeepTheirValue) {
  methods::ReplayItem small, large;
  small.label = large.label = torch::zeros({2, 2}, torch::kLong);
  small.logits = torch::full({3, 2, 2}, 1000.0);
  large.logits = torch::full({3, 2, 2}, 1000.0);
  large.logits[1][0][0] = -1e6;
  methods::ReplayBuffer::to_stored_form(small);
  methods::ReplayBuffer::to_stored_form(large);
  EXPECT_EQ(small.logits.scalar_type(), torch::kHalf);
  EXPECT_EQ(large.logits.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::isfinite(large.logits).all().item<bool>());
  EXPECT_EQ(large.logits[1][0][0].item<double>(), -1e6);
}

TEST(ReplayBuffer, ClassBalanceDoesNotGroupByLabelZero) {
  // What the trainer passes at step 0 and in domain runs: first label 0. Every crop is mostly
  // label 0 (background, or a road) with a 2 x 2 item; the groups are the items' classes.
  const auto mostly_zero = [](int cls) {
    ReplayItem it = crop(cls);
    it.label.zero_();
    it.label.narrow(0, 1, 2).narrow(1, 1, 2).fill_(cls);
    return it;
  };
  ReplayBuffer cb({2, "class_balanced", "random", 1});
  cb.add({mostly_zero(1), mostly_zero(1), mostly_zero(1), mostly_zero(2)}, 0, 0);
  std::map<int, int> per_class;
  for (size_t i = 0; i < cb.size(); ++i) ++per_class[cb[i].group];
  EXPECT_EQ(per_class, (std::map<int, int>{{1, 1}, {2, 1}}));
  // A crop of label 0 alone is its own group when label 0 is learnt this step.
  ReplayBuffer only({3, "class_balanced", "random", 1});
  only.add({crop(0), mostly_zero(1)}, 0, 0);
  per_class.clear();
  for (size_t i = 0; i < only.size(); ++i) ++per_class[only[i].group];
  EXPECT_EQ(per_class, (std::map<int, int>{{0, 1}, {1, 1}}));
}

TEST(Rehearsal, DerPlusPlusLearnsLabelZeroOnlyWithoutTheBackgroundShift) {
  // Two stored crops of one row: labels 0, 1, 2, 255; the first stored when the model had 2
  // classes (label 2 unknown then), the second with 3.
  auto labels = torch::tensor({0, 1, 2, 255, 0, 1, 2, 255}, torch::kLong).view({2, 1, 4});
  auto shifted = methods::der_ce_target(labels, {2, 3}, true);
  EXPECT_TRUE(torch::equal(shifted, torch::tensor({255, 1, 255, 255, 255, 1, 2, 255}, torch::kLong).view({2, 1, 4})));
  auto domain = methods::der_ce_target(labels, {2, 3}, false);
  EXPECT_TRUE(torch::equal(domain, torch::tensor({0, 1, 255, 255, 0, 1, 2, 255}, torch::kLong).view({2, 1, 4})));
}

TEST(Rehearsal, ReplayAppendsStoredCropsToLaterBatches) {
  test::TempDir d;
  auto cfg = test::tiny_experiment(d.path(), 2);
  auto data = engine::open_experiment_data(cfg, "", 1);
  Rehearsal replay(Rehearsal::Kind::Replay, Options("replay", {{"memory", "5"}, {"ratio", "0.5"}}));
  engine::Trainer(cfg, data, replay, (d / "run").string()).run();
  EXPECT_EQ(replay.buffer().size(), 5u);
  // A step-1 batch of 4 gets 4 stored crops (ratio 0.5 of the final batch).
  StepContext ctx;
  ctx.step = 1;
  Batch b = four_crops();
  replay.before_forward(ctx, b);
  EXPECT_EQ(b.size(), 8);
  EXPECT_EQ(b.labels.size(0), 8);
  EXPECT_EQ(b.ids.size(), 8u);
}

// SSUL-M: stored crops take the place of half of a later batch, at random positions, with their
// stored labels and no salient pixels (memory crops get no unknown class).
TEST(Rehearsal, SsulMemoryReplacesHalfOfLaterBatches) {
  test::TempDir d;
  auto cfg = test::tiny_experiment(d.path(), 2);
  auto data = engine::open_experiment_data(cfg, "", 1);
  SSUL ssul(Options("ssul-m", {{"memory", "5"}}), 100);
  EXPECT_EQ(ssul.name(), "ssul-m");
  engine::Trainer(cfg, data, ssul, (d / "run").string()).run();
  ASSERT_NE(ssul.memory(), nullptr);
  EXPECT_EQ(ssul.memory()->size(), 5u);
  EXPECT_EQ(ssul.stats()["replay_images"], 5);

  StepContext ctx;
  ctx.step = 1;
  ctx.iteration = 7;
  Batch b = four_crops();
  b.images.fill_(-9);
  b.saliency = torch::ones({4, 32, 32}, torch::kUInt8);
  ssul.before_forward(ctx, b);
  ASSERT_EQ(b.size(), 4);
  int replaced = 0;
  for (int64_t i = 0; i < 4; ++i) {
    const bool memory = b.ids[size_t(i)].rfind("memory:", 0) == 0;
    if (!memory) {
      EXPECT_TRUE(b.images[i].eq(-9).all().item<bool>());
      EXPECT_TRUE(b.saliency[i].eq(1).all().item<bool>());
      continue;
    }
    ++replaced;
    const size_t item = std::stoul(b.ids[size_t(i)].substr(7));
    auto [image, label] = ssul.memory()->batch({item});
    EXPECT_TRUE(torch::equal(b.images[i], image[0]));
    EXPECT_TRUE(torch::equal(b.labels[i], label[0]));
    EXPECT_TRUE(b.saliency[i].eq(0).all().item<bool>());
    EXPECT_EQ(b.indices[size_t(i)], size_t(-1));
  }
  EXPECT_EQ(replaced, 2);
  // Step 0 has no memory to draw on; plain SSUL has none at all.
  Batch first = four_crops();
  ctx.step = 0;
  ssul.before_forward(ctx, first);
  EXPECT_EQ(std::count_if(first.ids.begin(), first.ids.end(), [](const auto& id) { return id.rfind("memory:", 0) == 0; }), 0);
  EXPECT_EQ(SSUL(Options("ssul")).memory(), nullptr);
  cseg::test::expect_error([] { SSUL(Options("ssul", {{"memory", "-1"}})); }, {"method_options.ssul.memory must be >= 0"});
}

// Method state (Fisher, scores, thresholds, buffers) lives in the step checkpoints: re-running a
// step from the previous step's checkpoint in a fresh process state gives the same numbers.
TEST(ContinualMethods, RerunningAStepFromItsCheckpointIsExact) {
  test::TempDir d;
  test::write_tiny_dataset(d / "data");
  for (const std::string name : {"ewc", "pi", "rw", "plop", "der++", "sdr", "ssul", "ssul-m", "bacs", "latent_replay"}) {
    SCOPED_TRACE(name);
    const auto dir = d / name;
    auto cfg = test::tiny_config((d / "data").string(), dir.string(), 3);
    auto data = engine::open_experiment_data(cfg, "", 1);
    auto first = make_method(name);
    auto full = engine::Trainer(cfg, data, *first, dir.string()).run();
    // Forget step 1: its checkpoint (kept aside) and its results.
    std::filesystem::rename(dir / "checkpoints" / "step1.pt", dir / "first_step1.pt");
    auto saved = nlohmann::json::parse(core::read_text((dir / "results.json").string()));
    saved["steps"].erase(1);
    core::write_text_atomic((dir / "results.json").string(), saved.dump());
    auto again = make_method(name);
    auto rerun = engine::Trainer(cfg, data, *again, dir.string()).run();
    EXPECT_EQ(rerun["steps"][1]["test"]["miou"], full["steps"][1]["test"]["miou"]);
    EXPECT_EQ(rerun["steps"][1]["test"]["per_class_iou"], full["steps"][1]["test"]["per_class_iou"]);
    // The retrained step ends with exactly the same weights.
    auto a = engine::build_model_for_step(cfg, *data.scenario, 1), b = engine::build_model_for_step(cfg, *data.scenario, 1);
    engine::load_checkpoint((dir / "first_step1.pt").string(), *a, nullptr, nullptr);
    engine::load_checkpoint((dir / "checkpoints" / "step1.pt").string(), *b, nullptr, nullptr);
    auto pb = b->named_parameters();
    for (const auto& p : a->named_parameters()) EXPECT_TRUE(torch::equal(p.value(), pb[p.key()])) << p.key();
  }
}

// RW's path integral is measured from an anchor that moves every `score_every` updates; a resume
// in the middle of a step must restore it (it used to restart from the step's first weights).
TEST(ContinualMethods, RwResumesItsScoreAnchorMidStep) {
  test::TempDir d;
  test::write_tiny_dataset(d / "data");
  auto cfg = test::tiny_config((d / "data").string(), (d / "run").string(), 3);
  auto data = engine::open_experiment_data(cfg, "", 1);
  auto build = [&] { return engine::build_model_for_step(cfg, *data.scenario, 0); };
  const auto copy = [](models::Segmenter& from, models::Segmenter& to) {
    torch::NoGradGuard no_grad;
    auto dst = to.named_parameters();
    for (const auto& p : from.named_parameters()) dst[p.key()].copy_(p.value());
  };
  auto straight = build(), start = build(), resumed_model = build();
  copy(*straight, *start);  // the step's first weights
  torch::manual_seed(3);
  const auto input = torch::randn({2, 3, 32, 32});
  const auto update = [&](ParameterRegularizer& rw, StepContext& ctx) {
    torch::optim::SGD sgd(ctx.model->parameters(), torch::optim::SGDOptions(0.1));  // stateless
    torch::manual_seed(7);  // the same dropout masks
    sgd.zero_grad();
    ctx.model->forward(input).logits.pow(2).mean().backward();
    rw.after_backward(ctx);
    sgd.step();
    rw.after_optimizer_step(ctx);
  };
  const auto scores = [&](const ParameterRegularizer& rw) {
    torch::serialize::OutputArchive out;
    rw.save(out);
    const auto file = (d / "rw.pt").string();
    out.save_to(file);
    torch::serialize::InputArchive in;
    in.load_from(file);
    std::vector<torch::Tensor> all;
    while (true) {
      torch::Tensor t;  // fresh each time: reading into a defined tensor overwrites its storage
      if (!in.try_read("score_" + std::to_string(all.size()), t)) break;
      all.push_back(t);
    }
    return all;
  };
  const Options options("rw", {{"score_every", "1"}});
  ParameterRegularizer first(ParameterRegularizer::Kind::RW, options);
  StepContext ctx;
  ctx.model = straight.get();
  first.on_step_begin(ctx);
  for (int i = 0; i < 3; ++i) update(first, ctx);
  torch::serialize::OutputArchive saved;  // the mid-step checkpoint's method state
  first.save(saved);
  saved.save_to((d / "mid.pt").string());
  copy(*straight, *resumed_model);        // and its weights
  // The resumed process, in the trainer's order: the method begins the step on the step's first
  // weights, then loads the mid-step state; training goes on from the mid-step weights.
  ParameterRegularizer resumed(ParameterRegularizer::Kind::RW, options);
  StepContext rctx;
  rctx.model = start.get();
  resumed.on_step_begin(rctx);
  torch::serialize::InputArchive mid;
  mid.load_from((d / "mid.pt").string());
  resumed.load(mid);
  rctx.model = resumed_model.get();
  update(first, ctx);
  update(resumed, rctx);
  const auto a = scores(first), b = scores(resumed);
  ASSERT_FALSE(a.empty());
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << "score " << i << " max diff " << (a[i] - b[i]).abs().max().item<double>() << " of " << a[i].abs().max().item<double>();
}

TEST(ContinualLosses, SdrClassMeansUseEveryImageOfTheBatch) {
  // Two images, 1 x 2 feature maps with D = 1: class 1 has features 1 (image 0) and 3, 5 (image 1).
  auto f = torch::tensor({1.f, 7.f, 3.f, 5.f}).view({2, 1, 1, 2});
  auto l = torch::tensor({int64_t(1), int64_t(0), int64_t(1), int64_t(1)}).view({2, 1, 2});
  auto [sums, counts] = SDR::class_sums(f, l, 2);
  EXPECT_FLOAT_EQ(counts[1].item<float>(), 3.f);
  EXPECT_FLOAT_EQ((sums[1] / counts[1]).item<float>(), 3.f);  // (1 + 3 + 5) / 3, not the mean of image means
  EXPECT_FLOAT_EQ(counts[0].item<float>(), 0.f);               // background is not a prototype
}

TEST(ContinualLosses, SsulTargetsUnknownAndPseudoLabels) {
  // Four pixels, 3 classes seen (bg, 1 old, 2 new): background not salient, background salient,
  // background where the old model is sure of class 1 (sigmoid(3) = 0.95 >= 0.7), and class 2.
  auto labels = torch::tensor({int64_t(0), int64_t(0), int64_t(0), int64_t(2)}).view({1, 1, 4});
  auto saliency = torch::tensor({int64_t(0), int64_t(1), int64_t(1), int64_t(1)}).view({1, 1, 4});
  auto old = torch::stack({torch::zeros({4}), torch::tensor({-3.f, -3.f, 3.f, -3.f})}).view({1, 2, 1, 4});
  auto [onehot, valid] = SSUL::targets(labels, saliency, old, 3, 0.7);
  auto target = onehot.argmax(1)[0][0];
  EXPECT_EQ(target[0].item<int64_t>(), 0);  // background
  EXPECT_EQ(target[1].item<int64_t>(), 3);  // unknown (channel C = 3)
  EXPECT_EQ(target[2].item<int64_t>(), 1);  // pseudo-label wins over unknown
  EXPECT_EQ(target[3].item<int64_t>(), 2);
  EXPECT_TRUE(valid.all().item<bool>());
  EXPECT_EQ(onehot.sum().item<float>(), 4.f);  // one-hot
}

TEST(ContinualLosses, BacsFocalLossAndBackgroundWeightsByHand) {
  // Focal loss, gamma 2: p = 0.5 for a positive pixel -> -(1 - 0.5)^2 log 0.5 = 0.1732868;
  // a negative pixel with p = 0.1 -> -(0.1)^2 log 0.9 = 0.0010536; mean of the two.
  auto p = torch::tensor({0.5f, 0.1f});
  auto t = torch::tensor({1.f, 0.f});
  auto valid = torch::tensor({true, true});
  EXPECT_NEAR(BACS::focal_loss(p, t, valid).item<double>(), (0.1732868 + 0.0010536) / 2, 1e-6);
  // Background weights: (1 - w)^2 on background, w > 0.5 -> 1 -> weight 0; foreground 1.
  auto labels = torch::tensor({int64_t(0), int64_t(0), int64_t(3)});
  auto seen = torch::tensor({0.2f, 0.7f, 0.9f});
  auto w = BACS::background_weights(labels, seen, 2.0);
  EXPECT_NEAR(w[0].item<float>(), 0.64f, 1e-6);
  EXPECT_EQ(w[1].item<float>(), 0.f);
  EXPECT_EQ(w[2].item<float>(), 1.f);
}

TEST(Rehearsal, LatentReplayRunsTheRestOfTheNetworkFromStoredStates) {
  torch::manual_seed(0);
  models::ModelOptions mc;
  auto model = models::make_model(mc, 5);
  model->eval();
  auto x = torch::randn({2, 3, 64, 64});
  auto out = model->forward(x);
  for (const auto& layer : model->latent_layers()) {
    SCOPED_TRACE(layer);
    std::vector<torch::Tensor> state;
    for (const auto& tap : model->latent_taps(layer)) state.push_back(out.feature(tap));
    auto logits = model->forward_from(layer, state, 64, 64);
    EXPECT_LT((logits - out.logits).abs().max().item<double>(), 1e-5);
  }
  test::expect_error([&] { model->latent_taps("decoder"); }, {"'decoder'", "learning_to_downsample"});
  // Frozen through the global extractor: one training step changes the classifier, not the
  // frozen layers' weights or normalisation statistics.
  model->freeze_through("global_feature_extractor");
  model->train();
  std::map<std::string, torch::Tensor> before;
  for (const auto& p : model->named_parameters()) before[p.key()] = p.value().clone();
  for (const auto& b : model->named_buffers()) before[b.key()] = b.value().clone();
  torch::optim::SGD opt(model->parameters(), torch::optim::SGDOptions(0.1));
  auto loss = model->forward(x).logits.square().mean();
  loss.backward();
  opt.step();
  int frozen_same = 0, trained_changed = 0;
  for (const auto& p : model->named_parameters()) {
    const bool frozen = p.key().rfind("learning_to_downsample", 0) == 0 || p.key().rfind("global_feature_extractor", 0) == 0;
    if (frozen) {
      EXPECT_FALSE(p.value().requires_grad()) << p.key();
      frozen_same += torch::equal(p.value(), before[p.key()]);
    } else if (p.key().rfind("feature_fusion", 0) == 0) {
      trained_changed += !torch::equal(p.value(), before[p.key()]);
    }
  }
  EXPECT_GT(frozen_same, 10);
  EXPECT_GT(trained_changed, 2);
  for (const auto& b : model->named_buffers())
    if (b.key().rfind("learning_to_downsample", 0) == 0 && b.key().find("running_mean") != std::string::npos)
      EXPECT_TRUE(torch::equal(b.value(), before[b.key()])) << b.key();
  model->freeze_through("");
  for (const auto& p : model->parameters()) EXPECT_TRUE(p.requires_grad());
  // In a run: a buffer of latent states, smaller than one of the same crops as images.
  test::TempDir d;
  auto cfg = test::tiny_experiment(d.path(), 2, "latent");
  auto data = engine::open_experiment_data(cfg, "", 1);
  Rehearsal latent(Rehearsal::Kind::Latent, Options("latent_replay", {{"memory", "5"}}));
  engine::Trainer(cfg, data, latent, (d / "latent").string()).run();
  cfg.output_dir = (d / "image").string();
  Rehearsal image(Rehearsal::Kind::Replay, Options("replay", {{"memory", "5"}}));
  engine::Trainer(cfg, data, image, (d / "image").string()).run();
  ASSERT_EQ(latent.buffer().size(), 5u);
  EXPECT_FALSE(latent.buffer()[0].image.defined());
  // 32x32 crops: an image is 3 x 32 x 32 halves, the state after learning-to-downsample 64 x 4 x 4.
  EXPECT_EQ(latent.buffer().bytes(), 5 * (64 * 4 * 4 * 2 + 32 * 32));
  EXPECT_EQ(image.buffer().bytes(), 5 * (3 * 32 * 32 * 2 + 32 * 32));
}

TEST(ReplayBuffer, BacsImportanceReservoir) {
  // Importance: minus the cross-entropy averaged over every pixel, background and ignored ones 0.
  auto logits = torch::tensor({1.0f, 2.0f, 0.5f, 0.0f, 0.0f, 3.0f, -1.0f, 1.0f, 0.0f}).view({1, 3, 1, 3});
  auto labels = torch::tensor({int64_t(0), int64_t(1), int64_t(255)}).view({1, 1, 3});
  const double ce1 = std::log(std::exp(2.0) + std::exp(0.0) + std::exp(1.0)) - 0.0;  // pixel 1, class 1
  EXPECT_NEAR(bacs_importance(logits, labels)[0].item<double>(), -ce1 / 3, 1e-6);

  // Replaceability by hand: importances -1, -2, -3 (mean |.| 2), balances 1 (mean 1): scale 2,
  // s = 0.3 * imp / 2 + 0.7 = 0.55, 0.4, 0.25 -> min-max 1, 0.5, 0 -> 2/3, 1/3, 0.
  auto p = replacement_probabilities({-1, -2, -3}, {1, 1, 1});
  EXPECT_NEAR(p[0], 2.0 / 3, 1e-12);
  EXPECT_NEAR(p[1], 1.0 / 3, 1e-12);
  EXPECT_EQ(p[2], 0.0);
  // Equal importance: the crops whose rarest class is most held go; all alike: uniform.
  EXPECT_EQ(replacement_probabilities({-1, -1, -1}, {2, 2, 1}), (std::vector<double>{0.5, 0.5, 0.0}));
  EXPECT_EQ(replacement_probabilities({0, 0}, {3, 3}), (std::vector<double>{0.5, 0.5}));
  // No loss anywhere: balance alone decides (no division by zero).
  EXPECT_EQ(replacement_probabilities({0, 0}, {1, 2}), (std::vector<double>{0.0, 1.0}));

  // In the buffer: a hard crop (importance -5) beside an easy one of the same class scores
  // lowest, so it is never the one replaced, however many easy crops of another class arrive;
  // plain reservoir loses it. Background-only crops are not offered at all.
  auto with_importance = [](int cls, double importance) {
    auto it = crop(cls);
    it.importance = importance;
    return it;
  };
  ReplayBuffer bacs({2, "importance_reservoir", "random", 3});
  bacs.add({with_importance(1, -5), with_importance(0, -0.1), with_importance(1, -0.1)}, 0, 1);
  ASSERT_EQ(bacs.size(), 2u);
  EXPECT_EQ(bacs[0].importance, -5);
  std::vector<ReplayItem> easy;
  for (int i = 0; i < 60; ++i) easy.push_back(with_importance(2, -0.1));
  bacs.add(easy, 1, 2);
  EXPECT_EQ(bacs.size(), 2u);
  EXPECT_EQ(bacs[0].importance, -5);
  EXPECT_EQ(bacs[1].label.max().item<int>(), 2);  // the easy class-1 crop went, a class-2 one came
  ReplayBuffer plain({2, "reservoir", "random", 3});
  plain.add({with_importance(1, -5), with_importance(1, -0.1)}, 0, 1);
  plain.add(easy, 1, 2);
  int hard_left = 0;
  for (size_t i = 0; i < plain.size(); ++i) hard_left += plain[i].importance == -5;
  EXPECT_EQ(hard_left, 0);

  // The importance survives a checkpoint (later steps' draws depend on it).
  auto back = reloaded(bacs, ReplayBuffer({2, "importance_reservoir", "random", 3}));
  EXPECT_EQ(back[0].importance, -5);

  // BACS fills its buffer this way by default, from the trained model's losses.
  test::TempDir d;
  auto cfg = test::tiny_experiment(d.path(), 1);
  auto data = engine::open_experiment_data(cfg, "", 1);
  Rehearsal der(Rehearsal::Kind::DERpp, Options("der++", {{"memory", "6"}, {"policy", "importance_reservoir"}}));
  engine::Trainer(cfg, data, der, (d / "der").string()).run();
  ASSERT_GT(der.buffer().size(), 0u);
  double lowest = 0;
  for (size_t i = 0; i < der.buffer().size(); ++i) {
    EXPECT_LE(der.buffer()[i].importance, 0);
    lowest = std::min(lowest, der.buffer()[i].importance);
    auto l = der.buffer()[i].label.to(torch::kLong);
    EXPECT_TRUE(((l > 0) & (l < 255)).any().item<bool>()) << "crop " << i << " holds no foreground class";
  }
  EXPECT_LT(lowest, 0);
}

TEST(ReplayBuffer, AslFillingStrategiesAndRatioModes) {
  // Two crops of 1 x 2 pixels, labels 1: crop 0 predicted confidently and right, crop 1 unsure and wrong.
  auto logits = torch::zeros({2, 3, 1, 2});
  logits[0][1].fill_(6);
  logits[1][2].fill_(0.4);
  auto labels = torch::ones({2, 1, 2}, torch::kLong);
  for (const std::string s : {"uncertainty", "confidence", "margin", "loss", "accuracy"}) {
    auto p = selection_priority(s, logits, labels);
    EXPECT_GT(p[1].item<double>(), p[0].item<double>()) << s;
  }
  EXPECT_NEAR(selection_priority("accuracy", logits, labels)[1].item<double>(), 1.0, 1e-6);
  EXPECT_NEAR(selection_priority("accuracy", logits, labels)[0].item<double>(), 0.0, 1e-6);
  // Cover: 4 of 8 frames offered in order keep frames 0, 4, 2, 6 (spread over the sequence).
  ReplayBuffer cover({4, "experience_balanced", "cover", 1});
  std::vector<ReplayItem> frames;
  for (int i = 0; i < 8; ++i) frames.push_back(crop(1, i));
  cover.add(std::move(frames), 0, 1);
  std::set<double> kept;
  for (size_t i = 0; i < cover.size(); ++i) kept.insert(cover[i].priority);
  EXPECT_EQ(kept, std::set<double>({0, 2, 4, 6}));
  // Ratio modes: at step 2 a batch of 4 gets 4 stored crops (fixed 0.5), all 12 (per step: 0.5
  // per earlier step), 8 (adaptive: 2/3 of the batch) or, focused on the first step, only step-0 crops.
  test::TempDir d;
  auto cfg = test::tiny_experiment(d.path(), 2);
  cfg.scenario.steps = {{0, 1, 2}, {3}, {4}};
  auto data = engine::open_experiment_data(cfg, "", 1);
  std::map<std::string, int> replayed;
  for (const std::string mode : {"fixed", "per_step", "adaptive", "focus_first"}) {
    SCOPED_TRACE(mode);
    Rehearsal replay(Rehearsal::Kind::Replay,
                     Options("replay", {{"memory", "12"}, {"ratio", "0.5"}, {"ratio_mode", mode}, {"policy", "experience_balanced"}}));
    cfg.output_dir = (d / mode).string();
    engine::Trainer(cfg, data, replay, (d / mode).string()).run();
    StepContext ctx;
    ctx.step = 2;
    Batch b = four_crops();
    replay.before_forward(ctx, b);
    replayed[mode] = int(b.size()) - 4;
    if (mode == "focus_first") {
      int from_step0 = 0;
      for (const auto& [step, n] : replay.buffer().per_step())
        if (step == 0) from_step0 = n;
      EXPECT_EQ(replayed[mode], std::min(4, from_step0));
    }
  }
  EXPECT_EQ(replayed["fixed"], 4);
  EXPECT_EQ(replayed["per_step"], 12);  // share 0.5 x 2 steps, capped at 0.9 -> 36 wanted, 12 held
  EXPECT_EQ(replayed["adaptive"], 8);   // share 2/3
}

namespace {
/// Reads a feature map without declaring it (Method::needs_features() stays false).
class UndeclaredFeatureReader : public methods::FineTune {
 public:
  torch::Tensor task_loss(methods::StepContext& c, const Batch& b, const models::ModelOutput& out) override {
    out.feature("decoder");
    return FineTune::task_loss(c, b, out);
  }
};
}  // namespace

TEST(Methods, AMethodReadingUndeclaredFeatureMapsGetsAClearError) {
  // Fine-tuning keeps no feature taps (less memory); a method that reads them must declare it.
  test::TempDir d;
  auto cfg = test::tiny_experiment(d.path(), 2);
  auto data = engine::open_experiment_data(cfg, "", 1);
  UndeclaredFeatureReader reader;
  test::expect_error([&] { engine::Trainer(cfg, data, reader, (d / "run").string()).run(); },
                     {"no feature map 'decoder'", "needs_features"});
}
