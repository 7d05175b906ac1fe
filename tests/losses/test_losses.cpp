#include <gtest/gtest.h>

#include "cseg/losses/losses.h"

using namespace cseg;
namespace F = torch::nn::functional;

namespace {
struct Fixture {
  torch::Tensor logits, target;
  Fixture() {
    torch::manual_seed(0);
    logits = torch::randn({2, 4, 3, 5});
    target = torch::randint(0, 4, {2, 3, 5}, torch::kInt64);
    target.index_put_({0, 0}, 255);  // one ignored row
  }
};
}  // namespace

TEST(Losses, CrossEntropyMatchesTorchWithIgnore) {
  Fixture f;
  auto ref = F::cross_entropy(f.logits, f.target, F::CrossEntropyFuncOptions().ignore_index(255));
  EXPECT_NEAR(losses::cross_entropy(f.logits, f.target).item<double>(), ref.item<double>(), 1e-6);
  std::vector<double> w{0.5, 1.0, 2.0, 3.0};
  auto refw = F::cross_entropy(
      f.logits, f.target, F::CrossEntropyFuncOptions().ignore_index(255).weight(torch::tensor({0.5f, 1.f, 2.f, 3.f})));
  EXPECT_NEAR(losses::cross_entropy(f.logits, f.target, w).item<double>(), refw.item<double>(), 1e-5);
}

TEST(Losses, HandDerivedCrossEntropy) {
  // Two classes, logits (0, ln 3): p(1) = 3/4. Target 1 -> -ln(3/4); target 0 -> -ln(1/4).
  auto logits = torch::tensor({0.0f, std::log(3.0f)}).reshape({1, 2, 1, 1}).repeat({1, 1, 1, 2});
  auto target = torch::tensor({1, 0}, torch::kInt64).reshape({1, 1, 2});
  double expected = 0.5 * (-std::log(0.75) - std::log(0.25));
  EXPECT_NEAR(losses::cross_entropy(logits, target).item<double>(), expected, 1e-6);
  // Focal with gamma 2: (1-p)^2 weights: (1/4)^2 * -ln(3/4) and (3/4)^2 * -ln(1/4).
  double focal = 0.5 * (0.0625 * -std::log(0.75) + 0.5625 * -std::log(0.25));
  EXPECT_NEAR(losses::focal_loss(logits, target, 2.0).item<double>(), focal, 1e-6);
  // OHEM keeping half the pixels keeps the harder one: -ln(1/4).
  EXPECT_NEAR(losses::ohem_cross_entropy(logits, target, 0.5).item<double>(), -std::log(0.25), 1e-6);
}

TEST(Losses, FocalWithGammaZeroAndOhemKeepingAllEqualCrossEntropy) {
  Fixture f;
  const double ce = losses::cross_entropy(f.logits, f.target).item<double>();
  EXPECT_NEAR(losses::focal_loss(f.logits, f.target, 0.0).item<double>(), ce, 1e-6);
  EXPECT_NEAR(losses::ohem_cross_entropy(f.logits, f.target, 1.0).item<double>(), ce, 1e-6);
}

TEST(Losses, DiceAndSoftIouVanishOnAConfidentCorrectPrediction) {
  auto target = torch::tensor({0, 1, 2, 1}, torch::kInt64).reshape({1, 2, 2});
  auto logits = 50 * F::one_hot(target, 3).permute({0, 3, 1, 2}).to(torch::kFloat32);
  EXPECT_NEAR(losses::dice_loss(logits, target).item<double>(), 0.0, 1e-5);
  EXPECT_NEAR(losses::soft_iou_loss(logits, target).item<double>(), 0.0, 1e-5);
  // Uniform prediction over 2 classes, target all class 0: p = 1/2 everywhere.
  // Dice for class 0 = 2 * (n/2) / (n/2 + n) = 2/3, the only class present.
  auto t0 = torch::zeros({1, 2, 2}, torch::kInt64);
  EXPECT_NEAR(losses::dice_loss(torch::zeros({1, 2, 2, 2}), t0).item<double>(), 1.0 - 2.0 / 3.0, 1e-5);
  // Soft IoU: (n/2) / n = 1/2.
  EXPECT_NEAR(losses::soft_iou_loss(torch::zeros({1, 2, 2, 2}), t0).item<double>(), 0.5, 1e-5);
}

TEST(Losses, AllIgnoredGivesZeroNotNan) {
  auto logits = torch::randn({1, 3, 2, 2}, torch::requires_grad());
  auto target = torch::full({1, 2, 2}, 255, torch::kInt64);
  for (const char* name : {"ce", "focal", "dice", "soft_iou", "ohem"}) {
    losses::LossOptions c;
    c.name = name;
    auto l = losses::segmentation_loss(c, logits, target);
    EXPECT_EQ(l.item<double>(), 0.0) << name;
    l.backward();  // still differentiable
  }
}
