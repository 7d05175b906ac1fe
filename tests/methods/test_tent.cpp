// TENT (methods/tent.h): the entropy against values derived by hand; on an unlabelled
// environment only the norm layers' scale and shift (and their statistics) change, on a
// labelled one everything trains.
#include <gtest/gtest.h>

#include <cmath>

#include "../tiny_experiment.h"
#include "cseg/core/files.h"
#include "cseg/engine/experiment_data.h"
#include "cseg/engine/trainer.h"
#include "cseg/methods/tent.h"
#include "cseg/weights/load.h"

using namespace cseg;

TEST(Tent, MeanEntropyByHand) {
  // Two pixels, two classes: equal logits give p = (1/2, 1/2), H = ln 2; logits (ln 3, 0) give
  // p = (3/4, 1/4), H = -(3/4 ln 3/4 + 1/4 ln 1/4) = 0.562335.
  auto logits = torch::tensor({0.0, std::log(3.0), 0.0, 0.0}).reshape({1, 2, 1, 2});
  const double expected = (std::log(2.0) + 0.5623351446188083) / 2;
  EXPECT_NEAR(methods::Tent::mean_entropy(logits).item<double>(), expected, 1e-6);
  // Its gradient sharpens: it raises the larger logit of the second pixel.
  auto x = logits.clone().set_requires_grad(true);
  methods::Tent::mean_entropy(x).backward();
  EXPECT_LT(x.grad()[0][0][0][1].item<double>(), 0.0);
  EXPECT_NEAR(x.grad()[0][0][0][0].item<double>(), 0.0, 1e-9);  // a uniform pixel is a stationary point
}

TEST(Tent, AdaptsOnlyNormScaleAndShiftOnAnUnlabelledEnvironment) {
  test::TempDir d;
  test::write_tiny_dataset(d / "known");
  test::write_tiny_dataset(d / "new");
  auto cfg = test::tiny_config("", (d / "run").string(), 4);
  cfg.scenario.type = "domain";
  cfg.scenario.steps.clear();
  cfg.scenario.environments = {{"known", (d / "known").string(), true}, {"new", (d / "new").string(), false}};
  auto data = engine::open_experiment_data(cfg, (d / "cache").string(), 1);
  auto method = methods::make_method("tent");
  auto r = engine::Trainer(cfg, data, *method, (d / "run").string()).run();
  ASSERT_EQ(r["steps"].size(), 2u);

  const auto start = weights::read_weights((d / "run/checkpoints/step0.pt").string());
  const auto adapted = weights::read_weights((d / "run/checkpoints/step1.pt").string());
  ASSERT_EQ(start.size(), adapted.size());
  // Which tensors are norm layers': those with running statistics beside them.
  std::set<std::string> norms;
  for (const auto& [k, t] : start)
    if (k.size() > 13 && k.compare(k.size() - 13, 13, ".running_mean") == 0) norms.insert(k.substr(0, k.size() - 13));
  ASSERT_FALSE(norms.empty());
  int affine_changed = 0;
  for (size_t i = 0; i < start.size(); ++i) {
    const auto& key = start[i].first;
    const auto dot = key.rfind('.');
    const bool in_norm = norms.count(key.substr(0, dot)) > 0;
    const bool same = torch::equal(start[i].second, adapted[i].second);
    if (!in_norm) EXPECT_TRUE(same) << key << " changed, but TENT trains only the norm layers";
    const auto field = key.substr(dot + 1);
    if (in_norm && (field == "weight" || field == "bias")) affine_changed += !same;
  }
  EXPECT_GT(affine_changed, int(norms.size()));  // most scales and shifts moved
  // The step's loss is the entropy, logged under its name.
  EXPECT_NE(core::read_text((d / "run/metrics.jsonl").string()).find("\"loss_entropy\""), std::string::npos);

  // On labelled steps TENT is fine-tuning: step 0 trained every layer from the same start.
  auto finetune = methods::make_method("finetune");
  auto cfg2 = cfg;
  cfg2.output_dir = (d / "ft").string();
  cfg2.scenario.environments.resize(1);
  auto data2 = engine::open_experiment_data(cfg2, (d / "cache").string(), 1);
  engine::Trainer(cfg2, data2, *finetune, (d / "ft").string()).run();
  const auto tuned = weights::read_weights((d / "ft/checkpoints/step0.pt").string());
  for (size_t i = 0; i < start.size(); ++i)
    EXPECT_TRUE(torch::equal(start[i].second, tuned[i].second)) << start[i].first;
}
