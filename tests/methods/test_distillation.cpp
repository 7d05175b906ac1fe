// The distillation methods' model surgery (methods/distillation.h): MiB's initialisation of new
// classifier rows from the background.
#include <gtest/gtest.h>

#include "../fixtures.h"
#include "cseg/methods/distillation.h"
#include "cseg/models/fast_scnn.h"

using namespace cseg;
using namespace cseg::methods;

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
