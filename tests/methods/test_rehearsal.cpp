// Rehearsal methods (methods/rehearsal.h): replay, DER++, SSUL-M's memory and latent replay.
#include <gtest/gtest.h>

#include "../fixtures.h"
#include "../tiny_experiment.h"
#include "cseg/engine/trainer.h"
#include "cseg/methods/rehearsal.h"
#include "cseg/methods/replay_buffer.h"
#include "cseg/methods/ssul.h"
#include "replay_items.h"

using namespace cseg;
using namespace cseg::methods;
using cseg::test::four_crops;

TEST(Rehearsal, DerPlusPlusLearnsLabelZeroOnlyWithoutTheBackgroundShift) {
  // Two stored crops of one row: labels 0, 1, 2, 255; the first stored when the model had 2
  // classes (label 2 unknown then), the second with 3.
  auto labels = torch::tensor({0, 1, 2, 255, 0, 1, 2, 255}, torch::kLong).view({2, 1, 4});
  auto shifted = methods::der_ce_target(labels, {2, 3}, true);
  EXPECT_TRUE(torch::equal(shifted, torch::tensor({255, 1, 255, 255, 255, 1, 2, 255}, torch::kLong).view({2, 1, 4})));
  auto domain = methods::der_ce_target(labels, {2, 3}, false);
  EXPECT_TRUE(torch::equal(domain, torch::tensor({0, 1, 255, 255, 0, 1, 2, 255}, torch::kLong).view({2, 1, 4})));
}

TEST(Rehearsal, ReplayAppendsStoredCropsToLaterBatches) {
  test::TempDir d;
  auto cfg = test::tiny_experiment(d.path(), 2);
  auto data = engine::open_experiment_data(cfg, "", 1);
  Rehearsal replay(Rehearsal::Kind::Replay, Options("replay", {{"memory", "5"}, {"ratio", "0.5"}}));
  engine::Trainer(cfg, data, replay, (d / "run").string()).run();
  EXPECT_EQ(replay.buffer().size(), 5u);
  // A step-1 batch of 4 gets 4 stored crops (ratio 0.5 of the final batch).
  StepContext ctx;
  ctx.step = 1;
  Batch b = four_crops();
  replay.before_forward(ctx, b);
  EXPECT_EQ(b.size(), 8);
  EXPECT_EQ(b.labels.size(0), 8);
  EXPECT_EQ(b.ids.size(), 8u);
}

// SSUL-M: stored crops take the place of half of a later batch, at random positions, with their
// stored labels and no salient pixels (memory crops get no unknown class).
TEST(Rehearsal, SsulMemoryReplacesHalfOfLaterBatches) {
  test::TempDir d;
  auto cfg = test::tiny_experiment(d.path(), 2);
  auto data = engine::open_experiment_data(cfg, "", 1);
  SSUL ssul(Options("ssul-m", {{"memory", "5"}}), 100);
  EXPECT_EQ(ssul.name(), "ssul-m");
  engine::Trainer(cfg, data, ssul, (d / "run").string()).run();
  ASSERT_NE(ssul.memory(), nullptr);
  EXPECT_EQ(ssul.memory()->size(), 5u);
  EXPECT_EQ(ssul.stats()["replay_images"], 5);

  StepContext ctx;
  ctx.step = 1;
  ctx.iteration = 7;
  Batch b = four_crops();
  b.images.fill_(-9);
  b.saliency = torch::ones({4, 32, 32}, torch::kUInt8);
  ssul.before_forward(ctx, b);
  ASSERT_EQ(b.size(), 4);
  int replaced = 0;
  for (int64_t i = 0; i < 4; ++i) {
    const bool memory = b.ids[size_t(i)].rfind("memory:", 0) == 0;
    if (!memory) {
      EXPECT_TRUE(b.images[i].eq(-9).all().item<bool>());
      EXPECT_TRUE(b.saliency[i].eq(1).all().item<bool>());
      continue;
    }
    ++replaced;
    const size_t item = std::stoul(b.ids[size_t(i)].substr(7));
    auto [image, label] = ssul.memory()->batch({item});
    EXPECT_TRUE(torch::equal(b.images[i], image[0]));
    EXPECT_TRUE(torch::equal(b.labels[i], label[0]));
    EXPECT_TRUE(b.saliency[i].eq(0).all().item<bool>());
    EXPECT_EQ(b.indices[size_t(i)], size_t(-1));
  }
  EXPECT_EQ(replaced, 2);
  // Step 0 has no memory to draw on; plain SSUL has none at all.
  Batch first = four_crops();
  ctx.step = 0;
  ssul.before_forward(ctx, first);
  EXPECT_EQ(
      std::count_if(first.ids.begin(), first.ids.end(), [](const auto& id) { return id.rfind("memory:", 0) == 0; }), 0);
  EXPECT_EQ(SSUL(Options("ssul")).memory(), nullptr);
  cseg::test::expect_error(
      [] {
        SSUL(Options("ssul", {{"memory", "-1"}}));
      },
      {"method_options.ssul.memory must be >= 0"});
}

TEST(Rehearsal, LatentReplayRunsTheRestOfTheNetworkFromStoredStates) {
  torch::manual_seed(0);
  models::ModelOptions mc;
  auto model = models::make_model(mc, 5);
  model->eval();
  auto x = torch::randn({2, 3, 64, 64});
  auto out = model->forward(x);
  for (const auto& layer : model->latent_layers()) {
    SCOPED_TRACE(layer);
    std::vector<torch::Tensor> state;
    for (const auto& tap : model->latent_taps(layer)) state.push_back(out.feature(tap));
    auto logits = model->forward_from(layer, state, 64, 64);
    EXPECT_LT((logits - out.logits).abs().max().item<double>(), 1e-5);
  }
  test::expect_error([&] { model->latent_taps("decoder"); }, {"'decoder'", "learning_to_downsample"});
  // Frozen through the global extractor: one training step changes the classifier, not the
  // frozen layers' weights or normalisation statistics.
  model->freeze_through("global_feature_extractor");
  model->train();
  std::map<std::string, torch::Tensor> before;
  for (const auto& p : model->named_parameters()) before[p.key()] = p.value().clone();
  for (const auto& b : model->named_buffers()) before[b.key()] = b.value().clone();
  torch::optim::SGD opt(model->parameters(), torch::optim::SGDOptions(0.1));
  auto loss = model->forward(x).logits.square().mean();
  loss.backward();
  opt.step();
  int frozen_same = 0, trained_changed = 0;
  for (const auto& p : model->named_parameters()) {
    const bool frozen =
        p.key().rfind("learning_to_downsample", 0) == 0 || p.key().rfind("global_feature_extractor", 0) == 0;
    if (frozen) {
      EXPECT_FALSE(p.value().requires_grad()) << p.key();
      frozen_same += torch::equal(p.value(), before[p.key()]);
    } else if (p.key().rfind("feature_fusion", 0) == 0) {
      trained_changed += !torch::equal(p.value(), before[p.key()]);
    }
  }
  EXPECT_GT(frozen_same, 10);
  EXPECT_GT(trained_changed, 2);
  for (const auto& b : model->named_buffers())
    if (b.key().rfind("learning_to_downsample", 0) == 0 && b.key().find("running_mean") != std::string::npos)
      EXPECT_TRUE(torch::equal(b.value(), before[b.key()])) << b.key();
  model->freeze_through("");
  for (const auto& p : model->parameters()) EXPECT_TRUE(p.requires_grad());
  // In a run: a buffer of latent states, smaller than one of the same crops as images.
  test::TempDir d;
  auto cfg = test::tiny_experiment(d.path(), 2, "latent");
  auto data = engine::open_experiment_data(cfg, "", 1);
  Rehearsal latent(Rehearsal::Kind::Latent, Options("latent_replay", {{"memory", "5"}}));
  engine::Trainer(cfg, data, latent, (d / "latent").string()).run();
  cfg.output_dir = (d / "image").string();
  Rehearsal image(Rehearsal::Kind::Replay, Options("replay", {{"memory", "5"}}));
  engine::Trainer(cfg, data, image, (d / "image").string()).run();
  ASSERT_EQ(latent.buffer().size(), 5u);
  EXPECT_FALSE(latent.buffer()[0].image.defined());
  // 32x32 crops: an image is 3 x 32 x 32 halves, the state after learning-to-downsample 64 x 4 x 4.
  EXPECT_EQ(latent.buffer().bytes(), 5 * (64 * 4 * 4 * 2 + 32 * 32));
  EXPECT_EQ(image.buffer().bytes(), 5 * (3 * 32 * 32 * 2 + 32 * 32));
}
