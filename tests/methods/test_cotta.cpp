// CoTTA (methods/cotta.h): the loss, the teacher's moving average and the stochastic restore
// against values derived by hand; on unlabelled environments the teacher is what is evaluated
// and checkpointed, the student carries on at the next step, and a step rerun from the previous
// step's checkpoint ends with the same weights.
#include <gtest/gtest.h>

#include <cmath>

#include "../tiny_experiment.h"
#include "cseg/core/files.h"
#include "cseg/engine/experiment_data.h"
#include "cseg/engine/trainer.h"
#include "cseg/methods/cotta.h"
#include "cseg/weights/load.h"

using namespace cseg;

TEST(CoTTA, LossAverageAndRestoreByHand) {
  // One pixel, two classes. Teacher logits (0, ln 3): targets (1/4, 3/4); student logits equal:
  // log p = (ln 1/2, ln 1/2), loss = -(1/4 + 3/4) ln 1/2 = ln 2. Student = teacher: the loss is
  // the targets' entropy, -(1/4 ln 1/4 + 3/4 ln 3/4) = 0.562335.
  auto teacher = torch::tensor({0.0, std::log(3.0)}).reshape({1, 2, 1, 1});
  auto uniform = torch::zeros({1, 2, 1, 1});
  EXPECT_NEAR(methods::CoTTA::soft_cross_entropy(uniform, teacher).item<double>(), std::log(2.0), 1e-6);
  EXPECT_NEAR(methods::CoTTA::soft_cross_entropy(teacher, teacher).item<double>(), 0.5623351446188083, 1e-6);
  // Its gradient pulls the student's second logit up: d/dx_1 = p_1 - q_1 = 1/2 - 3/4.
  auto x = uniform.clone().set_requires_grad(true);
  methods::CoTTA::soft_cross_entropy(x, teacher).backward();
  EXPECT_NEAR(x.grad()[0][1][0][0].item<double>(), -0.25, 1e-6);

  // Moving average: 0.75 * 1 + 0.25 * 3 = 1.5.
  methods::TensorMap t{{"w", torch::ones({3})}}, s{{"w", torch::full({3}, 3.0)}};
  methods::CoTTA::ema_update(t, s, 0.75);
  EXPECT_TRUE(torch::allclose(t["w"], torch::full({3}, 1.5)));

  // Restore: p = 0 keeps every element, p = 1 takes every source value, p = 0.3 about 30 %.
  methods::TensorMap w{{"w", torch::zeros({20000})}}, src{{"w", torch::ones({20000})}};
  methods::CoTTA::stochastic_restore(w, src, 0);
  EXPECT_EQ(w["w"].sum().item<double>(), 0);
  torch::manual_seed(5);
  methods::CoTTA::stochastic_restore(w, src, 0.3);
  EXPECT_NEAR(w["w"].mean().item<double>(), 0.3, 0.015);
  methods::CoTTA::stochastic_restore(w, src, 1);
  EXPECT_EQ(w["w"].mean().item<double>(), 1);

  test::expect_error([] { methods::CoTTA(methods::Options("cotta", {{"restore", "2"}})); }, {"cotta.restore"});
  test::expect_error([] { methods::CoTTA(methods::Options("cotta", {{"scales", "1"}})); }, {"scales"});
}

namespace {

config::ExperimentConfig three_rooms(const test::TempDir& d, int iterations) {
  for (const char* room : {"known", "new1", "new2"}) test::write_tiny_dataset(d / room);
  auto cfg = test::tiny_config("", (d / "run").string(), iterations);
  cfg.scenario.type = "domain";
  cfg.scenario.steps.clear();
  cfg.scenario.environments = {{"known", (d / "known").string(), true},
                               {"new1", (d / "new1").string(), false},
                               {"new2", (d / "new2").string(), false}};
  cfg.methods = {"cotta"};
  return cfg;
}

std::vector<std::pair<std::string, torch::Tensor>> parameters_of(const std::string& checkpoint) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (auto& [k, t] : weights::read_weights(checkpoint))
    if (k.find("running_") == std::string::npos && k.find("num_batches") == std::string::npos) out.emplace_back(k, t);
  return out;
}

}  // namespace

TEST(CoTTA, TheTeacherIsEvaluatedAndTheStudentCarriesOn) {
  test::TempDir d;
  // A teacher that never moves (ema 1): the model after an unlabelled step is the source model,
  // though the student trained.
  auto cfg = three_rooms(d, 4);
  cfg.method_options["cotta"] = {{"ema", "1"}, {"restore", "0"}, {"num_scales", "2"}};
  auto data = engine::open_experiment_data(cfg, (d / "cache").string(), 1);
  auto frozen = methods::make_method("cotta", cfg.method_options["cotta"]);
  auto r = engine::Trainer(cfg, data, *frozen, (d / "run").string()).run();
  ASSERT_EQ(r["steps"].size(), 3u);
  const auto step0 = parameters_of((d / "run/checkpoints/step0.pt").string());
  const auto step2 = parameters_of((d / "run/checkpoints/step2.pt").string());
  ASSERT_EQ(step0.size(), step2.size());
  for (size_t i = 0; i < step0.size(); ++i)
    EXPECT_TRUE(torch::equal(step0[i].second, step2[i].second)) << step0[i].first;
  EXPECT_EQ(r["steps"][1]["method_stats"]["cotta_batches"], 4);
  EXPECT_NE(core::read_text((d / "run/metrics.jsonl").string()).find("\"loss_cotta\""), std::string::npos);

  // The paper's averages: the teacher follows the student, so the model moves.
  auto cfg2 = three_rooms(d, 4);
  cfg2.output_dir = (d / "moving").string();
  cfg2.method_options["cotta"] = {{"ema", "0.5"}, {"num_scales", "2"}};
  auto moving = methods::make_method("cotta", cfg2.method_options["cotta"]);
  engine::Trainer(cfg2, data, *moving, (d / "moving").string()).run();
  const auto moved = parameters_of((d / "moving/checkpoints/step2.pt").string());
  int changed = 0;
  for (size_t i = 0; i < step0.size(); ++i) changed += !torch::equal(step0[i].second, moved[i].second);
  EXPECT_GT(changed, int(step0.size()) / 2);

  // Step 2 rerun from step 1's checkpoint (the teacher's weights, the student's in the method
  // state) ends with exactly the same weights.
  std::filesystem::rename(d / "moving/checkpoints/step2.pt", d / "first_step2.pt");
  auto saved = nlohmann::json::parse(core::read_text((d / "moving/results.json").string()));
  saved["steps"].erase(2);
  core::write_text_atomic((d / "moving/results.json").string(), saved.dump());
  auto again = methods::make_method("cotta", cfg2.method_options["cotta"]);
  engine::Trainer(cfg2, data, *again, (d / "moving").string()).run();
  const auto first = parameters_of((d / "first_step2.pt").string());
  const auto rerun = parameters_of((d / "moving/checkpoints/step2.pt").string());
  for (size_t i = 0; i < first.size(); ++i)
    EXPECT_TRUE(torch::equal(first[i].second, rerun[i].second)) << first[i].first;
}
