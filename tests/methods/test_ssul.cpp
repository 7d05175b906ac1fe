// SSUL (methods/ssul.h): targets with the unknown class and pseudo-labels.
#include <gtest/gtest.h>

#include "../fixtures.h"
#include "cseg/methods/ssul.h"

using namespace cseg;
using namespace cseg::methods;

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
