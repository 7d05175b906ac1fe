#include <gtest/gtest.h>

#include "cseg/engine/experiment_data.h"
#include "cseg/scenarios/scenario.h"
#include "fixtures.h"

using namespace cseg;
using namespace cseg::scenarios;
using cseg::test::expect_error;

namespace {
data::LabelSet labels(std::initializer_list<int> l) {
  data::LabelSet s;
  for (int v : l) s[v] = true;
  return s;
}
}  // namespace

TEST(TaskTable, VocTablesAndAliases) {
  auto t = resolve_task("voc", "15-1", 21);
  ASSERT_EQ(t.size(), 6u);
  EXPECT_EQ(t[0].size(), 16u);
  EXPECT_EQ(t[5], std::vector<int>{20});
  EXPECT_EQ(resolve_task("voc", "15-5s", 21), t);
  auto b = resolve_task("voc", "19-1b", 21);
  EXPECT_EQ(b[1], std::vector<int>{5});
  EXPECT_EQ(std::count(b[0].begin(), b[0].end(), 5), 0);
  EXPECT_EQ(resolve_task("voc", "10-1", 21).size(), 11u);
  EXPECT_EQ(resolve_task("voc", "5-3", 21)[1], (std::vector<int>{6, 7, 8}));
  EXPECT_EQ(resolve_task("voc", "2-1", 21).size(), 19u);
  EXPECT_EQ(resolve_task("voc", "offline", 21).size(), 1u);
}

TEST(TaskTable, AdeAndGenericSpecs) {
  auto a = resolve_task("ade20k", "100-10", 151);
  ASSERT_EQ(a.size(), 6u);
  EXPECT_EQ(a[1].front(), 101);
  EXPECT_EQ(a[5].back(), 150);
  EXPECT_EQ(resolve_task("ade20k", "50-20", 151).size(), 6u);
  // Generic on any dataset: FMNIST-Scenes has 10 foreground classes.
  auto g = resolve_task("fmnist_scenes", "4-2", 11);
  ASSERT_EQ(g.size(), 4u);
  EXPECT_EQ(g[0], (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_EQ(g[3], (std::vector<int>{9, 10}));
  auto e = resolve_task("fmnist_scenes", "6-3-1", 11);
  EXPECT_EQ(e[2], std::vector<int>{10});
  expect_error([] { resolve_task("fmnist_scenes", "4-4", 11); }, {"do not split"});
  expect_error([] { resolve_task("fmnist_scenes", "5-3-1", 11); }, {"add up to 9"});
  expect_error([] { resolve_task("voc", "banana", 21); }, {"unknown task 'banana'", "19-1b"});
}

TEST(TaskTable, CustomOrderReindexes) {
  // PLOP/SSUL order "b" for 15-1.
  std::vector<int> order{0, 12, 9, 20, 7, 15, 8, 14, 16, 5, 19, 4, 1, 13, 2, 11, 17, 3, 6, 18, 10};
  auto t = apply_order(resolve_task("voc", "15-1", 21), order, 21);
  EXPECT_EQ(t[1], std::vector<int>{17});
  EXPECT_EQ(t[5], std::vector<int>{10});
  Scenario sc(t, Mode::Overlap, Protocol::Plop, 21);
  EXPECT_EQ(sc.dataset_label(1), 12);  // step label 1 is dataset class 12
  EXPECT_EQ(sc.train_labels(0)[12], 1);
  EXPECT_EQ(sc.train_labels(1)[17], 16);  // the step-1 class lands right after step 0's
  expect_error([] { apply_order(resolve_task("voc", "15-1", 21), {0, 1, 2}, 21); }, {"scenario.order"});
}

// The image-selection rules of protocols.md §3 on a hand-made index: task 2-1-1 on 5 classes.
class ScenarioRules : public ::testing::Test {
 protected:
  TaskSteps steps{{0, 1, 2}, {3}, {4}};
  std::vector<data::LabelSet> index{
      labels({0, 1}),       // 0: step-0 class only
      labels({0, 1, 3}),    // 1: step-0 class + step-1 class
      labels({0, 3}),       // 2: step-1 class only
      labels({0, 3, 4}),    // 3: step-1 + a future class (step 2)
      labels({0}),          // 4: background only
      labels({0, 4, 255}),  // 5: step-2 class + void
      labels({0, 2, 4}),    // 6: step-0 + step-2 class
  };
};

TEST_F(ScenarioRules, OverlapDisjointSequentialImageSets) {
  Scenario overlap(steps, Mode::Overlap, Protocol::Plop, 5);
  Scenario disjoint(steps, Mode::Disjoint, Protocol::Plop, 5);
  Scenario sequential(steps, Mode::Sequential, Protocol::Plop, 5);
  EXPECT_EQ(overlap.train_images(0, index), (std::vector<size_t>{0, 1, 6}));
  EXPECT_EQ(disjoint.train_images(0, index), (std::vector<size_t>{0}));
  EXPECT_EQ(overlap.train_images(1, index), (std::vector<size_t>{1, 2, 3}));
  EXPECT_EQ(disjoint.train_images(1, index), (std::vector<size_t>{1, 2}));
  EXPECT_EQ(sequential.train_images(1, index), disjoint.train_images(1, index));
  EXPECT_EQ(overlap.train_images(2, index), (std::vector<size_t>{3, 5, 6}));
  EXPECT_EQ(disjoint.train_images(2, index), (std::vector<size_t>{3, 5, 6}));
  // Background-only images never appear.
  for (int k = 0; k < 3; ++k) {
    auto v = overlap.train_images(k, index);
    EXPECT_EQ(std::count(v.begin(), v.end(), 4u), 0);
  }
}

TEST_F(ScenarioRules, TrainingLabelMapsPerProtocol) {
  Scenario mib(steps, Mode::Overlap, Protocol::Mib, 5);
  Scenario plop(steps, Mode::Overlap, Protocol::Plop, 5);
  Scenario seq(steps, Mode::Sequential, Protocol::Plop, 5);
  // Step 1: current class 3 kept, old 1/2 -> 0, future 4 -> 0.
  for (const auto* sc : {&mib, &plop}) {
    auto m = sc->train_labels(1);
    EXPECT_EQ(m[3], 3);
    EXPECT_EQ(m[1], 0);
    EXPECT_EQ(m[2], 0);
    EXPECT_EQ(m[4], 0);
    EXPECT_EQ(m[0], 0);
  }
  EXPECT_EQ(mib.train_labels(1)[255], 0);     // MiB v1 turns the void border into background
  EXPECT_EQ(plop.train_labels(1)[255], 255);  // the others keep it ignored
  auto s = seq.train_labels(1);               // sequential keeps old labels
  EXPECT_EQ(s[1], 1);
  EXPECT_EQ(s[2], 2);
  EXPECT_EQ(s[3], 3);
  auto c = plop.cumulative_train_labels(1);  // joint: every seen label, future -> 0
  EXPECT_EQ(c[1], 1);
  EXPECT_EQ(c[3], 3);
  EXPECT_EQ(c[4], 0);
  EXPECT_EQ(c[255], 255);
}

TEST_F(ScenarioRules, EvaluationSetsAndMapsPerProtocol) {
  Scenario mib(steps, Mode::Overlap, Protocol::Mib, 5);
  Scenario mibv2(steps, Mode::Overlap, Protocol::MibV2, 5);
  Scenario plop(steps, Mode::Overlap, Protocol::Plop, 5);
  Scenario ssul(steps, Mode::Overlap, Protocol::Ssul, 5);
  Scenario css(steps, Mode::Disjoint, Protocol::CSSegmentation, 5);
  // After step 0: images with a seen foreground class (1 or 2).
  EXPECT_EQ(mib.eval_images(0, index), (std::vector<size_t>{0, 1, 6}));
  EXPECT_EQ(plop.eval_images(0, index), (std::vector<size_t>{0, 1, 6}));
  EXPECT_EQ(mibv2.eval_images(0, index).size(), index.size());
  EXPECT_EQ(ssul.eval_images(0, index).size(), index.size());
  EXPECT_EQ(css.eval_images(0, index), (std::vector<size_t>{0}));  // its disjoint runs drop future classes
  // Future classes: ignored (MiB, SSUL) or background (PLOP).
  EXPECT_EQ(mib.eval_labels(0)[3], 255);
  EXPECT_EQ(ssul.eval_labels(0)[3], 255);
  EXPECT_EQ(plop.eval_labels(0)[3], 0);
  EXPECT_EQ(plop.eval_labels(0)[1], 1);
  EXPECT_EQ(plop.eval_labels(2)[4], 4);
  EXPECT_EQ(mib.eval_labels(0)[255], 255);
}

TEST_F(ScenarioRules, AStepWithoutImagesIsAnError) {
  std::vector<data::LabelSet> no_class_4{labels({0, 1}), labels({0, 3})};
  Scenario sc(steps, Mode::Overlap, Protocol::Plop, 5);
  expect_error([&] { sc.train_images(2, no_class_4); }, {"step 2", "no training images"});
}

// `cseg scenario --json` on a VOC-layout tree: the image sets and label maps of §3-4.
TEST(ScenarioOnVocTree, DescribesStepsExactly) {
  test::TempDir d;
  struct S {
    const char* id;
    std::vector<test::Rect> rects;
  };
  const std::vector<S> train{{"t_person", {{15, 0, 0, 4, 4}}},
                             {"t_person_plant", {{15, 0, 0, 4, 4}, {16, 4, 4, 4, 4}}},
                             {"t_plant", {{16, 0, 0, 4, 4}, {255, 5, 0, 1, 1}}},
                             {"t_tv", {{20, 0, 0, 4, 4}}},
                             {"t_bg", {}}};
  const std::vector<S> val{{"v_person", {{15, 0, 0, 4, 4}}}, {"v_tv", {{20, 0, 0, 4, 4}}}};
  std::vector<std::string> tids, vids;
  for (const auto& s : train) {
    test::write_voc_sample(d.path(), s.id, test::label_map(8, 8, s.rects));
    tids.push_back(s.id);
  }
  for (const auto& s : val) {
    test::write_voc_sample(d.path(), s.id, test::label_map(8, 8, s.rects));
    vids.push_back(s.id);
  }
  test::write_lines(d / "ImageSets/Segmentation/train.txt", tids);
  test::write_lines(d / "ImageSets/Segmentation/val.txt", vids);
  config::ExperimentConfig cfg;
  cfg.dataset.name = "voc";
  cfg.dataset.root = d.str();
  cfg.scenario.task = "15-1";
  for (const char* mode : {"overlap", "disjoint"}) {
    cfg.scenario.mode = mode;
    cfg.scenario.protocol = "mib";
    // Steps 2..4 (classes 17, 18, 19) have no image in this tiny tree: describe only 0, 1, 5.
    auto data = engine::open_experiment_data(cfg, "", 1);
    const auto& sc = *data.scenario;
    auto ids = [&](const std::vector<size_t>& v, const engine::SplitData& s) {
      std::vector<std::string> out;
      for (size_t i : v) out.push_back(s.dataset->id(i));
      return out;
    };
    const bool overlap = std::string(mode) == "overlap";
    EXPECT_EQ(
        ids(sc.train_images(0, data.train.index), data.train),
        overlap ? (std::vector<std::string>{"t_person", "t_person_plant"}) : (std::vector<std::string>{"t_person"}));
    EXPECT_EQ(ids(sc.train_images(1, data.train.index), data.train),
              (std::vector<std::string>{"t_person_plant", "t_plant"}));
    EXPECT_EQ(ids(sc.train_images(5, data.train.index), data.train), (std::vector<std::string>{"t_tv"}));
    EXPECT_EQ(ids(sc.eval_images(0, data.val.index), data.val), (std::vector<std::string>{"v_person"}));
    EXPECT_EQ(ids(sc.eval_images(5, data.val.index), data.val), (std::vector<std::string>{"v_person", "v_tv"}));
    EXPECT_EQ(sc.train_labels(1)[16], 16);
    EXPECT_EQ(sc.train_labels(1)[15], 0);
    EXPECT_EQ(sc.train_labels(1)[255], 0);  // mib
    EXPECT_EQ(sc.eval_labels(0)[20], 255);  // mib: future ignored at test time
  }
}
