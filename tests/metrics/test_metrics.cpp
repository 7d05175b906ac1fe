#include <gtest/gtest.h>

#include "cseg/metrics/confusion.h"
#include "cseg/metrics/continual.h"

using namespace cseg::metrics;

TEST(Metrics, ConfusionFromTensorsSkipsIgnore) {
  ConfusionMatrix cm(3);
  auto target = torch::tensor({0, 0, 1, 1, 2, 255}, torch::kInt64);
  auto pred = torch::tensor({0, 1, 1, 1, 0, 2}, torch::kInt64);
  cm.update(pred, target);
  EXPECT_EQ(cm.at(0, 0), 1);
  EXPECT_EQ(cm.at(0, 1), 1);
  EXPECT_EQ(cm.at(1, 1), 2);
  EXPECT_EQ(cm.at(2, 0), 1);
  int64_t total = 0;
  for (auto c : cm.counts()) total += c;
  EXPECT_EQ(total, 5);  // the 255 pixel is not counted
}

TEST(Metrics, HandDerivedScores) {
  // gt 0: 3 px (2 right, 1 -> 1); gt 1: 1 px (right); class 2: no ground truth, 1 false positive from... none.
  ConfusionMatrix cm(3);
  cm.add(0, 0, 2);
  cm.add(0, 1, 1);
  cm.add(1, 1, 1);
  auto s = score(cm);
  // IoU0 = 2 / (3 + 2 - 2) = 2/3; IoU1 = 1 / (1 + 2 - 1) = 1/2; class 2 has no gt -> excluded.
  ASSERT_TRUE(s.iou[0] && s.iou[1]);
  EXPECT_NEAR(*s.iou[0], 2.0 / 3, 1e-12);
  EXPECT_NEAR(*s.iou[1], 0.5, 1e-12);
  EXPECT_FALSE(s.iou[2].has_value());
  EXPECT_NEAR(s.miou, (2.0 / 3 + 0.5) / 2, 1e-12);
  EXPECT_NEAR(s.pixel_accuracy, 3.0 / 4, 1e-12);
  EXPECT_NEAR(s.mean_accuracy, (2.0 / 3 + 1.0) / 2, 1e-12);
  EXPECT_NEAR(s.fw_iou, 0.75 * 2.0 / 3 + 0.25 * 0.5, 1e-12);
  EXPECT_NEAR(*s.precision[0], 1.0, 1e-12);
  EXPECT_NEAR(*s.precision[1], 0.5, 1e-12);
  EXPECT_NEAR(*mean_iou(s, 1, 3), 0.5, 1e-12);
  EXPECT_FALSE(mean_iou(s, 2, 3).has_value());
  EXPECT_NEAR(harmonic_iou(0.6, 0.3), 0.4, 1e-12);
  EXPECT_EQ(harmonic_iou(0.6, 0.0), 0.0);
}

TEST(Metrics, ForgettingAndBackwardTransfer) {
  // R[i][j] after step i on task j.
  AccuracyMatrix r{{0.8, std::nullopt, std::nullopt}, {0.6, 0.7, std::nullopt}, {0.5, 0.4, 0.9}};
  auto f = forgetting(r);
  ASSERT_EQ(f.size(), 3u);
  EXPECT_NEAR(*f[0], 0.8 - 0.5, 1e-12);
  EXPECT_NEAR(*f[1], 0.7 - 0.4, 1e-12);
  EXPECT_FALSE(f[2].has_value());
  EXPECT_NEAR(*backward_transfer(r), ((0.5 - 0.8) + (0.4 - 0.7)) / 2, 1e-12);
  EXPECT_NEAR(*final_average(r), (0.5 + 0.4 + 0.9) / 3, 1e-12);
  EXPECT_FALSE(backward_transfer({{0.5}}).has_value());
}
