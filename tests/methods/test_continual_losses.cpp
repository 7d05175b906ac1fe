// MiB, LwF, LwF-MC, PLOP and POD losses (methods/continual_losses.h) on tiny tensors against
// hand-derived values, and the invariants the papers rely on.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "../fixtures.h"
#include "cseg/methods/continual_losses.h"
#include "cseg/methods/distillation.h"

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
std::pair<double, torch::Tensor> value_and_grad(const torch::Tensor& x,
                                                const std::function<torch::Tensor(const torch::Tensor&)>& loss) {
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
    auto [rv, rg] =
        value_and_grad(x.to(torch::kDouble), [&](const torch::Tensor& a) { return unbiased_ce(a, t, num_old); });
    EXPECT_NEAR(v, rv, 1e-5 * std::abs(rv) + 1e-7) << "num_old " << num_old;
    EXPECT_LT((g - rg).abs().max().item<double>(), 1e-7) << "num_old " << num_old;
    EXPECT_GT(rg.abs().max().item<double>(), 1e-4);
  }
  for (int c_old : {1, 3, 4}) {
    auto old = x_old.narrow(1, 0, c_old);
    auto [v, g] = value_and_grad(x, [&](const torch::Tensor& a) { return unbiased_kd(a, old); });
    auto [rv, rg] = value_and_grad(x.to(torch::kDouble),
                                   [&](const torch::Tensor& a) { return unbiased_kd(a, old.to(torch::kDouble)); });
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
  EXPECT_NEAR(local_pod(torch::zeros({1, 1, 2, 4}), torch::ones({1, 1, 2, 4}), {1, 2}).item<double>(), std::sqrt(18.0),
              1e-6);
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
    EXPECT_NEAR(composite.item<double>(), reference.item<double>(),
                1e-6 * (1 + reference.item<double>()));  // float pooling weights
    composite.backward();
    EXPECT_LT((b_composite.grad() - b_ref.grad()).abs().max().item<double>(),
              1e-6 * (1 + b_ref.grad().abs().max().item<double>()));
  }
  // A teacher's channels-last map gives the same loss.
  auto a = torch::randn({2, 3, 5, 7}), b = torch::randn({2, 3, 5, 7});
  EXPECT_NEAR(local_pod(a.contiguous(torch::MemoryFormat::ChannelsLast), b).item<double>(),
              local_pod(a, b).item<double>(), 1e-6);
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
  auto second = a[1].unsqueeze(0).to(torch::kDouble),
       second_new = pair.detach()[1].unsqueeze(0).to(torch::kDouble).requires_grad_(true);
  slow(second, second_new, {1, 2, 4}).backward();
  EXPECT_EQ(pair.grad()[0].abs().sum().item<double>(), 0.0);
  EXPECT_LT((pair.grad()[1].to(torch::kDouble) - 0.125 * second_new.grad()[0]).abs().max().item<double>(),
            1e-6 * (1 + second_new.grad().abs().max().item<double>()));
}

TEST(ContinualLosses, PlopPseudoLabelsByHand) {
  // Three pixels: background with a confident old prediction (class 1), background with a
  // uniform (uncertain) old prediction, and a pixel of the new class 3.
  auto labels = torch::tensor({int64_t(0), int64_t(0), int64_t(3)}).view({1, 1, 3});
  // old[0, c, 0, p]: pixel 0 -> (0, 10, 0), pixels 1 and 2 -> (0, 0, 0).
  auto old =
      torch::stack({torch::tensor({0.f, 0.f, 0.f}), torch::tensor({10.f, 0.f, 0.f}), torch::tensor({0.f, 0.f, 0.f})})
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
