// The shared replay buffer (methods/replay_buffer.h): policies, selection, memory, checkpoints,
// BACS's importance reservoir and ASL's filling strategies and ratio modes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "../fixtures.h"
#include "../tiny_experiment.h"
#include "cseg/engine/checkpoint.h"
#include "cseg/engine/trainer.h"
#include "cseg/methods/bacs.h"
#include "cseg/methods/rehearsal.h"
#include "cseg/methods/replay_buffer.h"
#include "replay_items.h"

using namespace cseg;
using namespace cseg::methods;
using cseg::test::crop;
using cseg::test::four_crops;
using cseg::test::reloaded;

TEST(ReplayBuffer, PoliciesSelectionBytesAndCheckpoint) {
  // Reservoir: never more than the capacity, uniform over everything offered.
  ReplayBuffer res({3, "reservoir", "random", 1});
  std::vector<ReplayItem> ten;
  for (int i = 0; i < 10; ++i) ten.push_back(crop(1 + i % 2));
  res.add(ten, 0, 1);
  EXPECT_EQ(res.size(), 3u);
  // A crop is float16 3x4x4 (96 bytes) + uint8 4x4 labels (16 bytes).
  EXPECT_EQ(res.bytes(), 3 * (96 + 16));

  // Class-balanced: step 0 has classes 1 (6 crops) and 2 (2 crops), capacity 4 -> 2 + 2;
  // step 1 adds class 3 -> round-robin quotas 2, 1, 1.
  ReplayBuffer cb({4, "class_balanced", "random", 1});
  std::vector<ReplayItem> s0;
  for (int i = 0; i < 6; ++i) s0.push_back(crop(1));
  for (int i = 0; i < 2; ++i) s0.push_back(crop(2));
  s0.push_back(crop(0));  // background only: not stored
  cb.add(s0, 0, 1);
  std::map<int, int> per_class;
  for (size_t i = 0; i < cb.size(); ++i) ++per_class[cb[i].group];
  EXPECT_EQ(per_class, (std::map<int, int>{{1, 2}, {2, 2}}));
  std::vector<ReplayItem> s1;
  for (int i = 0; i < 5; ++i) s1.push_back(crop(3));
  cb.add(s1, 1, 3);
  per_class.clear();
  for (size_t i = 0; i < cb.size(); ++i) ++per_class[cb[i].group];
  EXPECT_EQ(per_class, (std::map<int, int>{{1, 2}, {2, 1}, {3, 1}}));
  EXPECT_EQ(cb.per_step(), (std::map<int, int>{{0, 3}, {1, 1}}));

  // Experience-balanced with uncertainty selection keeps the most uncertain crops of each step.
  ReplayBuffer eb({2, "experience_balanced", "uncertainty", 1});
  eb.add({crop(1, 0.1), crop(1, 0.9), crop(2, 0.5)}, 0, 1);
  EXPECT_EQ(eb.size(), 2u);
  EXPECT_DOUBLE_EQ(eb[0].priority, 0.9);
  EXPECT_DOUBLE_EQ(eb[1].priority, 0.5);
  eb.add({crop(3, 0.2)}, 1, 3);
  EXPECT_EQ(eb.per_step(), (std::map<int, int>{{0, 1}, {1, 1}}));
  EXPECT_DOUBLE_EQ(eb[0].priority, 0.9);  // the step keeps its best crop

  // Herding: the first crop chosen is the one closest to the group's mean embedding.
  ReplayBuffer hb({1, "experience_balanced", "herding", 1});
  hb.add({crop(1, 0, 3.0f), crop(1, 0, 0.1f), crop(1, 0, -3.0f)}, 0, 1);
  EXPECT_NEAR(hb[0].embedding[1].item<float>(), 0.1f, 1e-6);

  // Checkpoint round trip.
  auto back = reloaded(cb, ReplayBuffer({4, "class_balanced", "random", 1}));
  ASSERT_EQ(back.size(), cb.size());
  for (size_t i = 0; i < cb.size(); ++i) {
    EXPECT_TRUE(torch::equal(back[i].image, cb[i].image));
    EXPECT_EQ(back[i].group, cb[i].group);
  }
  // Draws are distinct and reproducible.
  EXPECT_EQ(cb.draw(3, 7), cb.draw(3, 7));
  auto all = cb.draw(10, 7);
  EXPECT_EQ(std::set<size_t>(all.begin(), all.end()).size(), 4u);
}

// Logits are stored as float16, whose largest finite value is 65504: larger ones (a model whose
// norm statistics are far off) keep float32 instead of turning into inf DER targets.
TEST(ReplayBuffer, LogitsBeyondFloat16KeepTheirValue) {
  methods::ReplayItem small, large;
  small.label = large.label = torch::zeros({2, 2}, torch::kLong);
  small.logits = torch::full({3, 2, 2}, 1000.0);
  large.logits = torch::full({3, 2, 2}, 1000.0);
  large.logits[1][0][0] = -1e6;
  methods::ReplayBuffer::to_stored_form(small);
  methods::ReplayBuffer::to_stored_form(large);
  EXPECT_EQ(small.logits.scalar_type(), torch::kHalf);
  EXPECT_EQ(large.logits.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::isfinite(large.logits).all().item<bool>());
  EXPECT_EQ(large.logits[1][0][0].item<double>(), -1e6);
}

TEST(ReplayBuffer, ClassBalanceDoesNotGroupByLabelZero) {
  // What the trainer passes at step 0 and in domain runs: first label 0. Every crop is mostly
  // label 0 (background, or a road) with a 2 x 2 item; the groups are the items' classes.
  const auto mostly_zero = [](int cls) {
    ReplayItem it = crop(cls);
    it.label.zero_();
    it.label.narrow(0, 1, 2).narrow(1, 1, 2).fill_(cls);
    return it;
  };
  ReplayBuffer cb({2, "class_balanced", "random", 1});
  cb.add({mostly_zero(1), mostly_zero(1), mostly_zero(1), mostly_zero(2)}, 0, 0);
  std::map<int, int> per_class;
  for (size_t i = 0; i < cb.size(); ++i) ++per_class[cb[i].group];
  EXPECT_EQ(per_class, (std::map<int, int>{{1, 1}, {2, 1}}));
  // A crop of label 0 alone is its own group when label 0 is learnt this step.
  ReplayBuffer only({3, "class_balanced", "random", 1});
  only.add({crop(0), mostly_zero(1)}, 0, 0);
  per_class.clear();
  for (size_t i = 0; i < only.size(); ++i) ++per_class[only[i].group];
  EXPECT_EQ(per_class, (std::map<int, int>{{0, 1}, {1, 1}}));
}

TEST(ReplayBuffer, BacsImportanceReservoir) {
  // Importance: minus the cross-entropy averaged over every pixel, background and ignored ones 0.
  auto logits = torch::tensor({1.0f, 2.0f, 0.5f, 0.0f, 0.0f, 3.0f, -1.0f, 1.0f, 0.0f}).view({1, 3, 1, 3});
  auto labels = torch::tensor({int64_t(0), int64_t(1), int64_t(255)}).view({1, 1, 3});
  const double ce1 = std::log(std::exp(2.0) + std::exp(0.0) + std::exp(1.0)) - 0.0;  // pixel 1, class 1
  EXPECT_NEAR(bacs_importance(logits, labels)[0].item<double>(), -ce1 / 3, 1e-6);

  // Replaceability by hand: importances -1, -2, -3 (mean |.| 2), balances 1 (mean 1): scale 2,
  // s = 0.3 * imp / 2 + 0.7 = 0.55, 0.4, 0.25 -> min-max 1, 0.5, 0 -> 2/3, 1/3, 0.
  auto p = replacement_probabilities({-1, -2, -3}, {1, 1, 1});
  EXPECT_NEAR(p[0], 2.0 / 3, 1e-12);
  EXPECT_NEAR(p[1], 1.0 / 3, 1e-12);
  EXPECT_EQ(p[2], 0.0);
  // Equal importance: the crops whose rarest class is most held go; all alike: uniform.
  EXPECT_EQ(replacement_probabilities({-1, -1, -1}, {2, 2, 1}), (std::vector<double>{0.5, 0.5, 0.0}));
  EXPECT_EQ(replacement_probabilities({0, 0}, {3, 3}), (std::vector<double>{0.5, 0.5}));
  // No loss anywhere: balance alone decides (no division by zero).
  EXPECT_EQ(replacement_probabilities({0, 0}, {1, 2}), (std::vector<double>{0.0, 1.0}));

  // In the buffer: a hard crop (importance -5) beside an easy one of the same class scores
  // lowest, so it is never the one replaced, however many easy crops of another class arrive;
  // plain reservoir loses it. Background-only crops are not offered at all.
  auto with_importance = [](int cls, double importance) {
    auto it = crop(cls);
    it.importance = importance;
    return it;
  };
  ReplayBuffer bacs({2, "importance_reservoir", "random", 3});
  bacs.add({with_importance(1, -5), with_importance(0, -0.1), with_importance(1, -0.1)}, 0, 1);
  ASSERT_EQ(bacs.size(), 2u);
  EXPECT_EQ(bacs[0].importance, -5);
  std::vector<ReplayItem> easy;
  for (int i = 0; i < 60; ++i) easy.push_back(with_importance(2, -0.1));
  bacs.add(easy, 1, 2);
  EXPECT_EQ(bacs.size(), 2u);
  EXPECT_EQ(bacs[0].importance, -5);
  EXPECT_EQ(bacs[1].label.max().item<int>(), 2);  // the easy class-1 crop went, a class-2 one came
  ReplayBuffer plain({2, "reservoir", "random", 3});
  plain.add({with_importance(1, -5), with_importance(1, -0.1)}, 0, 1);
  plain.add(easy, 1, 2);
  int hard_left = 0;
  for (size_t i = 0; i < plain.size(); ++i) hard_left += plain[i].importance == -5;
  EXPECT_EQ(hard_left, 0);

  // The importance survives a checkpoint (later steps' draws depend on it).
  auto back = reloaded(bacs, ReplayBuffer({2, "importance_reservoir", "random", 3}));
  EXPECT_EQ(back[0].importance, -5);

  // BACS fills its buffer this way by default, from the trained model's losses.
  test::TempDir d;
  auto cfg = test::tiny_experiment(d.path(), 1);
  auto data = engine::open_experiment_data(cfg, "", 1);
  Rehearsal der(Rehearsal::Kind::DERpp, Options("der++", {{"memory", "6"}, {"policy", "importance_reservoir"}}));
  engine::Trainer(cfg, data, der, (d / "der").string()).run();
  ASSERT_GT(der.buffer().size(), 0u);
  double lowest = 0;
  for (size_t i = 0; i < der.buffer().size(); ++i) {
    EXPECT_LE(der.buffer()[i].importance, 0);
    lowest = std::min(lowest, der.buffer()[i].importance);
    auto l = der.buffer()[i].label.to(torch::kLong);
    EXPECT_TRUE(((l > 0) & (l < 255)).any().item<bool>()) << "crop " << i << " holds no foreground class";
  }
  EXPECT_LT(lowest, 0);
}

TEST(ReplayBuffer, AslFillingStrategiesAndRatioModes) {
  // Two crops of 1 x 2 pixels, labels 1: crop 0 predicted confidently and right, crop 1 unsure and wrong.
  auto logits = torch::zeros({2, 3, 1, 2});
  logits[0][1].fill_(6);
  logits[1][2].fill_(0.4);
  auto labels = torch::ones({2, 1, 2}, torch::kLong);
  for (const std::string s : {"uncertainty", "confidence", "margin", "loss", "accuracy"}) {
    auto p = selection_priority(s, logits, labels);
    EXPECT_GT(p[1].item<double>(), p[0].item<double>()) << s;
  }
  EXPECT_NEAR(selection_priority("accuracy", logits, labels)[1].item<double>(), 1.0, 1e-6);
  EXPECT_NEAR(selection_priority("accuracy", logits, labels)[0].item<double>(), 0.0, 1e-6);
  // Cover: 4 of 8 frames offered in order keep frames 0, 4, 2, 6 (spread over the sequence).
  ReplayBuffer cover({4, "experience_balanced", "cover", 1});
  std::vector<ReplayItem> frames;
  for (int i = 0; i < 8; ++i) frames.push_back(crop(1, i));
  cover.add(std::move(frames), 0, 1);
  std::set<double> kept;
  for (size_t i = 0; i < cover.size(); ++i) kept.insert(cover[i].priority);
  EXPECT_EQ(kept, std::set<double>({0, 2, 4, 6}));
  // Ratio modes: at step 2 a batch of 4 gets 4 stored crops (fixed 0.5), all 12 (per step: 0.5
  // per earlier step), 8 (adaptive: 2/3 of the batch) or, focused on the first step, only step-0 crops.
  test::TempDir d;
  auto cfg = test::tiny_experiment(d.path(), 2);
  cfg.scenario.steps = {{0, 1, 2}, {3}, {4}};
  auto data = engine::open_experiment_data(cfg, "", 1);
  std::map<std::string, int> replayed;
  for (const std::string mode : {"fixed", "per_step", "adaptive", "focus_first"}) {
    SCOPED_TRACE(mode);
    Rehearsal replay(
        Rehearsal::Kind::Replay,
        Options("replay",
                {{"memory", "12"}, {"ratio", "0.5"}, {"ratio_mode", mode}, {"policy", "experience_balanced"}}));
    cfg.output_dir = (d / mode).string();
    engine::Trainer(cfg, data, replay, (d / mode).string()).run();
    StepContext ctx;
    ctx.step = 2;
    Batch b = four_crops();
    replay.before_forward(ctx, b);
    replayed[mode] = int(b.size()) - 4;
    if (mode == "focus_first") {
      int from_step0 = 0;
      for (const auto& [step, n] : replay.buffer().per_step())
        if (step == 0) from_step0 = n;
      EXPECT_EQ(replayed[mode], std::min(4, from_step0));
    }
  }
  EXPECT_EQ(replayed["fixed"], 4);
  EXPECT_EQ(replayed["per_step"], 12);  // share 0.5 x 2 steps, capped at 0.9 -> 36 wanted, 12 held
  EXPECT_EQ(replayed["adaptive"], 8);   // share 2/3
}
