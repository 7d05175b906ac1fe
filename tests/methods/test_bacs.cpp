// BACS (methods/bacs.h): the focal loss and the background weights by hand.
#include <gtest/gtest.h>

#include "../fixtures.h"
#include "cseg/methods/bacs.h"

using namespace cseg;
using namespace cseg::methods;

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
