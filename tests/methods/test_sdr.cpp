// SDR (methods/sdr.h): class means over every image of a batch.
#include <gtest/gtest.h>

#include "../fixtures.h"
#include "cseg/methods/sdr.h"

using namespace cseg;
using namespace cseg::methods;

TEST(ContinualLosses, SdrClassMeansUseEveryImageOfTheBatch) {
  // Two images, 1 x 2 feature maps with D = 1: class 1 has features 1 (image 0) and 3, 5 (image 1).
  auto f = torch::tensor({1.f, 7.f, 3.f, 5.f}).view({2, 1, 1, 2});
  auto l = torch::tensor({int64_t(1), int64_t(0), int64_t(1), int64_t(1)}).view({2, 1, 2});
  auto [sums, counts] = SDR::class_sums(f, l, 2);
  EXPECT_FLOAT_EQ(counts[1].item<float>(), 3.f);
  EXPECT_FLOAT_EQ((sums[1] / counts[1]).item<float>(), 3.f);  // (1 + 3 + 5) / 3, not the mean of image means
  EXPECT_FLOAT_EQ(counts[0].item<float>(), 0.f);              // background is not a prototype
}
