// DFT* (methods/dft.h): step 0 trains with every step's head pre-allocated; later steps train
// the new heads alone, the network frozen in evaluation mode and the old heads fixed; evaluation
// sees the classes of the steps so far only. Also the Segmenter's train_only_heads it rests on.
#include <gtest/gtest.h>

#include "../tiny_experiment.h"
#include "cseg/engine/checkpoint.h"
#include "cseg/engine/experiment_data.h"
#include "cseg/engine/trainer.h"
#include "cseg/methods/dft.h"
#include "cseg/models/layers.h"

using namespace cseg;
namespace fs = std::filesystem;

namespace {
/// Every BatchNorm2d of the model: whether it is in training mode.
std::vector<bool> norm_modes(models::Segmenter& model) {
  std::vector<bool> modes;
  for (const auto& m : model.modules(false))
    if (std::dynamic_pointer_cast<models::BatchNorm2dImpl>(m)) modes.push_back(m->is_training());
  return modes;
}
}  // namespace

TEST(DFTStar, TrainHeadsOnlyFreezesTheNetworkAndTheOldHeads) {
  models::ModelOptions mc;
  auto model = models::make_model(mc, 3);
  model->add_head(2);
  model->add_head(1);
  model->train_only_heads({1, 2});
  for (const auto& p : model->named_parameters()) {
    const int head = models::head_index(*model, p.key());
    EXPECT_EQ(p.value().requires_grad(), head >= 1) << p.key();
  }
  // train() keeps every part below the model in evaluation mode (fixed norm statistics).
  model->train();
  EXPECT_TRUE(model->is_training());
  auto modes = norm_modes(*model);
  ASSERT_FALSE(modes.empty());
  for (bool m : modes) EXPECT_FALSE(m);
  model->train_everything();
  for (const auto& p : model->parameters()) EXPECT_TRUE(p.requires_grad());
  for (bool m : norm_modes(*model)) EXPECT_TRUE(m);
  EXPECT_EQ(models::head_index(*model, "classifier.heads.2.weight"), 2);
  EXPECT_EQ(models::head_index(*model, "classifier.dsconv1.conv.0.weight"), -1);
}

TEST(DFTStar, PreallocatesHeadsAndTrainsOnlyTheNewOneLater) {
  test::TempDir d;
  test::write_tiny_dataset(d / "data");
  auto cfg = test::tiny_config((d / "data").string(), (d / "run").string(), 4);
  auto data = engine::open_experiment_data(cfg, "", 1);
  auto method = methods::make_method("dft_star");
  ASSERT_TRUE(method->preallocates_heads());
  auto r = engine::Trainer(cfg, data, *method, (d / "run").string()).run();
  ASSERT_EQ(r["steps"].size(), 2u);
  // Step 0: both heads exist already; evaluation scores the three classes seen.
  EXPECT_EQ(engine::read_checkpoint_state((d / "run/checkpoints/step0.pt").string()).heads, (std::vector<int>{3, 2}));
  EXPECT_EQ(r["steps"][0]["test"]["per_class_iou"].size(), 3u);
  EXPECT_EQ(r["steps"][1]["test"]["per_class_iou"].size(), 5u);
  // Step 1 changed the new head only: network, norm statistics and the old head are step 0's.
  auto before = engine::build_model_for_step(cfg, *data.scenario, 0, true);
  auto after = engine::build_model_for_step(cfg, *data.scenario, 1, true);
  engine::load_checkpoint((d / "run/checkpoints/step0.pt").string(), *before, nullptr, nullptr);
  engine::load_checkpoint((d / "run/checkpoints/step1.pt").string(), *after, nullptr, nullptr);
  auto b = before->named_parameters(true), a = after->named_parameters(true);
  bool new_head_moved = false;
  for (const auto& p : a) {
    const int head = models::head_index(*after, p.key());
    const bool same = torch::equal(p.value(), *b.find(p.key()));
    if (head == 1)
      new_head_moved |= !same;
    else
      EXPECT_TRUE(same) << p.key();
  }
  EXPECT_TRUE(new_head_moved);
  auto bb = before->named_buffers(true);
  for (const auto& buf : after->named_buffers(true))
    EXPECT_TRUE(torch::equal(buf.value(), *bb.find(buf.key()))) << buf.key();
}

TEST(DFTStar, OptionsTurnEachPartOff) {
  test::TempDir d;
  test::write_tiny_dataset(d / "data");
  auto cfg = test::tiny_config((d / "data").string(), (d / "run").string(), 3);
  auto data = engine::open_experiment_data(cfg, "", 1);
  auto method = methods::make_method("dft_star", {{"preallocate", "false"}, {"freeze_network", "false"}});
  EXPECT_FALSE(method->preallocates_heads());
  engine::Trainer(cfg, data, *method, (d / "run").string()).run();
  EXPECT_EQ(engine::read_checkpoint_state((d / "run/checkpoints/step0.pt").string()).heads, (std::vector<int>{3}));
  EXPECT_THROW(methods::make_method("dft_star", {{"freeze_backbone", "true"}}), Error);
}

TEST(DFTStar, SsulFreezesTheNetworksNormStatisticsAfterStepZeroToo) {
  // SSUL's --freeze --bn_freeze: at step 1 the frozen network's batch-norm statistics stay those
  // of step 0 (they drifted to the new step's data before: train mode with frozen weights).
  test::TempDir d;
  test::write_tiny_dataset(d / "data");
  auto cfg = test::tiny_config((d / "data").string(), (d / "run").string(), 4);
  auto data = engine::open_experiment_data(cfg, "", 1);
  auto method = methods::make_method("ssul");
  engine::Trainer(cfg, data, *method, (d / "run").string()).run();
  auto before = engine::build_model_for_step(cfg, *data.scenario, 0);
  auto after = engine::build_model_for_step(cfg, *data.scenario, 1);
  engine::load_checkpoint((d / "run/checkpoints/step0.pt").string(), *before, nullptr, nullptr);
  engine::load_checkpoint((d / "run/checkpoints/step1.pt").string(), *after, nullptr, nullptr);
  auto bb = before->named_buffers(true);
  size_t buffers = 0;
  for (const auto& buf : after->named_buffers(true)) {
    EXPECT_TRUE(torch::equal(buf.value(), *bb.find(buf.key()))) << buf.key();
    ++buffers;
  }
  EXPECT_GT(buffers, 0u);
}
