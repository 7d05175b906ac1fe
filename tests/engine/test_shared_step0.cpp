// train.shared_step0: runs with an identical step 0 train it once. A method whose step 0 is
// fine-tuning takes fine-tuning's model and ends exactly where training its own would have; a
// method with a step 0 of its own shares only with itself; anything that changes step 0 (the
// seed here) trains anew.
#include <gtest/gtest.h>

#include "cseg/engine/experiment_data.h"
#include "cseg/engine/trainer.h"
#include "tiny_experiment.h"

using namespace cseg;
namespace fs = std::filesystem;

namespace {
nlohmann::json train(const config::ExperimentConfig& cfg, const std::string& method, const fs::path& out) {
  auto c = cfg;
  c.output_dir = out.string();
  auto data = engine::open_experiment_data(c, "", 1);
  auto m = methods::make_method(method);
  return engine::Trainer(c, data, *m, out.string()).run();
}
}  // namespace

TEST(SharedStep0, IdenticalStepZeroIsTrainedOnceAndGivesTheSameResults) {
  test::TempDir d;
  test::write_tiny_dataset(d / "data");
  auto cfg = test::tiny_config((d / "data").string(), (d / "unused").string(), 4);
  const auto alone = train(cfg, "mib", d / "mib_alone");

  cfg.train.shared_step0 = (d / "shared").string();
  const auto ft = train(cfg, "finetune", d / "finetune");
  EXPECT_TRUE(ft["steps"][0]["shared_step0"].is_null());  // trained here, and left for the others
  const auto mib = train(cfg, "mib", d / "mib");
  ASSERT_TRUE(mib["steps"][0]["shared_step0"].is_string());
  EXPECT_EQ(mib["steps"][0]["train_seconds"].get<double>(), 0.0);
  // Taking the shared step 0 ends exactly where training it would have.
  for (int k = 0; k < 2; ++k)
    EXPECT_EQ(mib["steps"][k]["test"]["confusion"], alone["steps"][k]["test"]["confusion"]) << "step " << k;

  // EWC learns its importance while step 0 trains: it does not take fine-tuning's step 0, but
  // a second EWC run takes the first's.
  const auto ewc1 = train(cfg, "ewc", d / "ewc1");
  EXPECT_TRUE(ewc1["steps"][0]["shared_step0"].is_null());
  const auto ewc2 = train(cfg, "ewc", d / "ewc2");
  EXPECT_TRUE(ewc2["steps"][0]["shared_step0"].is_string());
  EXPECT_EQ(ewc2["steps"][1]["test"]["confusion"], ewc1["steps"][1]["test"]["confusion"]);

  // Another seed is another step 0.
  cfg.seed = 4;
  EXPECT_TRUE(train(cfg, "finetune", d / "seed4")["steps"][0]["shared_step0"].is_null());
  size_t models = 0;
  for (const auto& e : fs::directory_iterator(d / "shared")) models += e.path().extension() == ".pt";
  EXPECT_EQ(models, 3u);  // fine-tuning's, EWC's, fine-tuning's with seed 4
}

// A domain run's step 0 is its first, labelled room. Runs that differ only in what they do in the
// unlabelled rooms (the method, the adaptation's cues) share it, and end exactly where training
// their own would have.
TEST(SharedStep0, DomainRunsShareTheirFirstLabelledRoom) {
  if (!test::have_fmnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed (scripts/setup.sh installs it)";
  test::TempDir d;
  auto cfg = test::fmnist_video_domain(d.path());
  auto cues = cfg;
  cues.adaptation.temporal_consistency = 1;
  cues.adaptation.student_scale = 0.3;
  const auto alone = train(cues, "replay", d / "replay_alone");

  cfg.train.shared_step0 = cues.train.shared_step0 = (d / "shared").string();
  const auto ft = train(cfg, "finetune", d / "finetune");
  EXPECT_TRUE(ft["steps"][0]["shared_step0"].is_null());
  const auto replay = train(cues, "replay", d / "replay");
  ASSERT_TRUE(replay["steps"][0]["shared_step0"].is_string());
  for (int k = 0; k < 2; ++k)
    EXPECT_EQ(replay["steps"][k]["test"]["confusion"], alone["steps"][k]["test"]["confusion"]) << "step " << k;
  EXPECT_EQ(replay["steps"][0]["method_stats"], alone["steps"][0]["method_stats"]);  // the buffer it filled
  EXPECT_GT(replay["steps"][0]["method_stats"]["replay_images"].get<int>(), 0);

  // Another first room is another step 0.
  std::swap(cfg.scenario.environments[0].root, cfg.scenario.environments[1].root);
  cfg.scenario.environments[0].labelled = true;
  cfg.scenario.environments[1].labelled = false;
  EXPECT_TRUE(train(cfg, "finetune", d / "other_room")["steps"][0]["shared_step0"].is_null());
}
