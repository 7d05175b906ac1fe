// Domain-incremental scenarios: environments as steps, the full accuracy matrix with forward
// transfer, and unlabelled environments learnt from the teacher's pseudo-labels.
#include <gtest/gtest.h>

#include "cseg/adaptation/pseudo_labels.h"
#include "cseg/adaptation/temporal.h"
#include "cseg/config/config.h"
#include "cseg/core/files.h"
#include "cseg/data/transforms.h"
#include "cseg/engine/experiment_data.h"
#include "cseg/engine/trainer.h"
#include "cseg/methods/method.h"
#include "cseg/metrics/continual.h"
#include "cseg/weights/load.h"
#include "tiny_experiment.h"

using namespace cseg;
namespace fs = std::filesystem;

namespace {

/// Two environments of the tiny dataset; the second's training masks are all 255, so a step that
/// read them as labels would have nothing to learn from (its loss would be 0/0).
config::ExperimentConfig two_environments(const test::TempDir& d, bool second_labelled) {
  test::write_tiny_dataset(d / "a");
  test::write_tiny_dataset(d / "b");
  for (int i = 0; i < 12; ++i)
    data::write_label_png((d / "b/masks" / ("tr" + std::to_string(i) + ".png")).string(),
                          cv::Mat(32, 32, CV_8UC1, cv::Scalar(255)), data::voc_palette());
  auto c = test::tiny_config("", (d / "run").string(), 4);
  c.scenario.type = "domain";
  c.scenario.steps.clear();
  c.scenario.environments = {{"a", (d / "a").string(), true}, {"b", (d / "b").string(), second_labelled}};
  c.adaptation.threshold = 0;  // every pixel gets a pseudo-label
  return c;
}

config::ExperimentConfig parse(const std::string& yaml, const test::TempDir& d) {
  core::write_text_atomic((d / "c.yaml").string(), yaml);
  return config::parse_experiment(config::load({(d / "c.yaml").string(), {}, ""}));
}

}  // namespace

TEST(Domain, PseudoLabelsHardAndSoft) {
  // Logits [1, 3 classes, 1, 2 pixels]: a confident class 2, an unsure class 1.
  auto logits = torch::zeros({1, 3, 1, 2});
  logits[0][2][0][0] = 5;    // pixel 0: class 2 with p = e^5 / (e^5 + 2) = 0.987
  logits[0][1][0][1] = 0.3;  // pixel 1: class 1 with p = 0.403
  auto hard = adaptation::hard_pseudo_labels(logits, 0.9);
  EXPECT_EQ(hard[0][0][0].item<int64_t>(), 2);
  EXPECT_EQ(hard[0][0][1].item<int64_t>(), 255);
  EXPECT_EQ(adaptation::hard_pseudo_labels(logits, 0)[0][0][1].item<int64_t>(), 1);
  EXPECT_DOUBLE_EQ(adaptation::labelled_fraction(hard), 0.5);
  // Class-balanced: the most confident half of each predicted class stays, below the threshold too.
  auto many = torch::zeros({1, 2, 1, 4});
  for (int x = 0; x < 4; ++x) many[0][1][0][x] = 0.1 * (x + 1);  // class 1 everywhere, p from 0.52 to 0.60
  auto balanced = adaptation::hard_pseudo_labels(many, 0.9, 0.5);
  const auto flat = balanced.reshape({-1}).contiguous();
  EXPECT_EQ(std::vector<int64_t>(flat.data_ptr<int64_t>(), flat.data_ptr<int64_t>() + 4),
            std::vector<int64_t>({255, 255, 1, 1}));
  // Soft: cross-entropy of the student against the teacher's softmax; the teacher gets no gradient.
  auto student = torch::zeros({1, 3, 1, 2}, torch::requires_grad());
  auto teacher = logits.clone().requires_grad_(true);
  auto loss = adaptation::soft_pseudo_label_loss(student, teacher, 1.0);
  EXPECT_NEAR(loss.item<double>(), std::log(3.0), 1e-6);  // a uniform student: log C whatever the target
  loss.backward();
  EXPECT_TRUE(student.grad().defined());
  EXPECT_FALSE(teacher.grad().defined());
}

TEST(Domain, ForwardTransferFromTheInitialModel) {
  // R[0][1] = 0.4 against 0.1 before training, R[1][2] = 0.3 against 0.2: FWT = (0.3 + 0.1) / 2.
  metrics::AccuracyMatrix r{{0.8, 0.4, 0.2}, {0.6, 0.7, 0.3}, {0.5, 0.6, 0.9}};
  EXPECT_NEAR(*metrics::forward_transfer(r, {0.05, 0.1, 0.2}), 0.2, 1e-12);
  EXPECT_NEAR(*metrics::final_average(r), (0.5 + 0.6 + 0.9) / 3, 1e-12);
  EXPECT_FALSE(metrics::forward_transfer({{0.5}}, {0.1}).has_value());
}

TEST(Domain, ConfigErrorsNameTheKey) {
  test::TempDir d;
  const std::string base = "dataset: {name: folder, num_classes: 5}\ntrain: {iterations: 1}\n";
  test::expect_error([&] { parse(base + "scenario: {type: domain}\n", d); },
                     {"scenario.environments", "lists its environments"});
  test::expect_error([&] { parse(base + "dataset: {root: x}\nscenario: {environments: {a: {root: x}}}\n", d); },
                     {"environments need scenario.type: domain"});
  test::expect_error(
      [&] { parse(base + "scenario: {type: domain, environments: {a: {root: x, labelled: false}}}\n", d); },
      {"scenario.environments.a.labelled", "first environment must be labelled"});
  test::expect_error([&] { parse(base + "scenario: {type: domain, environments: {a: {labelled: true}}}\n", d); },
                     {"scenario.environments.a.root", "needs a root"});
  test::expect_error([&] { parse(base + "dataset: {root: x}\nadaptation: {pseudo_labels: fuzzy}\n", d); },
                     {"adaptation.pseudo_labels", "fuzzy"});
  test::expect_error(
      [&] { parse(base + "dataset: {root: x}\nadaptation: {detector: {window: 4, min_history: 8}}\n", d); },
      {"adaptation.detector.min_history", "[2, window = 4]"});
  test::expect_error([&] { parse(base + "dataset: {root: x}\nadaptation: {detector: {patience: 0}}\n", d); },
                     {"adaptation.detector.patience"});
  test::expect_error([&] { parse(base + "dataset: {root: x}\nadaptation: {detect_history: 3}\n", d); },
                     {"adaptation.detect_history", "min_history = 8"});
  test::expect_error([&] { parse(base + "dataset: {root: x}\nadaptation: {detector: {sigma: 3}}\n", d); },
                     {"adaptation.detector.sigma"});
  test::expect_error([&] { parse(base + "dataset: {root: x}\nadaptation: {detect_signal: colour}\n", d); },
                     {"adaptation.detect_signal", "colour", "either"});
}

TEST(Domain, DetectThenAdapt) {
  // adaptation.detect: the unlabelled step trains on the frames from where the detector noticed
  // the arrival; unnoticed, it trains nothing and the model stays as the previous step left it.
  test::TempDir d;
  auto cfg = two_environments(d, false);
  cfg.adaptation.detect = true;
  cfg.adaptation.detect_history = 8;
  cfg.adaptation.detector = {/*window*/ 8, /*min_history*/ 4, /*sigmas*/ 0, /*min_rise*/ 2.0, /*patience*/ 1};
  auto data = engine::open_experiment_data(cfg, (d / "cache").string(), 1);
  auto method = methods::make_method("finetune", {});
  // Uncertainty lies in [0, 1]: nothing rises 2 above the known room's.
  auto missed = engine::Trainer(cfg, data, *method, (d / "run/missed").string()).run();
  const auto& det = missed["steps"][1]["detection"];
  ASSERT_TRUE(det.is_object()) << missed["steps"][1].dump();
  EXPECT_EQ(det["detected"], false);
  EXPECT_TRUE(det["delay_frames"].is_null());
  EXPECT_EQ(det["history_frames"], 8);
  EXPECT_EQ(det["frames"], 12);
  EXPECT_EQ(missed["steps"][1]["iterations"], 0);
  EXPECT_TRUE(missed["steps"][0]["detection"].is_null());  // labelled: no detection
  const auto& r = missed["accuracy_matrix"];
  EXPECT_EQ(r[1], r[0]);  // the model did not move
  EXPECT_EQ(
      missed["detection"],
      nlohmann::json(
          {{"arrivals", 1}, {"detected", 0}, {"mean_delay_frames", nullptr}, {"false_alarms", det["false_alarms"]}}));
  // Any frame above the known room's mean is unusual, and one is enough: the arrival is seen,
  // and the step trains on the frames from the detection on.
  cfg.adaptation.detector.min_rise = 0;
  auto method2 = methods::make_method("finetune", {});
  auto seen = engine::Trainer(cfg, data, *method2, (d / "run/seen").string()).run();
  const auto& s = seen["steps"][1];
  ASSERT_EQ(s["detection"]["detected"], true) << s.dump();
  const int delay = s["detection"]["delay_frames"];
  EXPECT_GE(delay, 1);
  EXPECT_EQ(s["train_images"], 12 - delay + 1);
  EXPECT_EQ(s["iterations"], 4);
  EXPECT_EQ(seen["detection"]["detected"], 1);
  EXPECT_EQ(seen["detection"]["mean_delay_frames"], double(delay));
  EXPECT_EQ(s["detection"]["signal"], "uncertainty");

  // The feature signal: the same frames as the known room's score about 1, so nothing rises 2
  // above them; a frame whose features moved would (NewEnvironment.FeatureShiftIsAZScoreOverChannels).
  cfg.adaptation.detect_signal = "features";
  cfg.adaptation.detector.min_rise = 2.0;
  auto method3 = methods::make_method("finetune", {});
  auto features = engine::Trainer(cfg, data, *method3, (d / "run/features").string()).run();
  const auto& f = features["steps"][1]["detection"];
  EXPECT_EQ(f["signal"], "features");
  // In-sample, each channel's squared z-scores over the 8 history frames sum to 7, so the frames'
  // mean squared score is at most 7 / 8 and (Jensen) their mean score at most sqrt(7 / 8);
  // channels that never vary (the tiny encoder map is 1x1: no spread) score 0.
  EXPECT_GT(f["history_mean"].get<double>(), 0.1);
  EXPECT_LE(f["history_mean"].get<double>(), std::sqrt(7.0 / 8) + 1e-9);
  EXPECT_EQ(f["detected"], false);
  EXPECT_EQ(f["by_signal"].size(), 1u);
  // Either signal: both watched, the earlier confirmation starts the step, false alarms add up.
  cfg.adaptation.detect_signal = "either";
  cfg.adaptation.detector.min_rise = 0;
  auto method5 = methods::make_method("finetune", {});
  auto either = engine::Trainer(cfg, data, *method5, (d / "run/either").string()).run();
  const auto& e = either["steps"][1]["detection"];
  ASSERT_EQ(e["by_signal"].size(), 2u) << e.dump();
  const int u_at = e["by_signal"]["uncertainty"]["detected_at"], f_at = e["by_signal"]["features"]["detected_at"];
  ASSERT_TRUE(u_at >= 0 || f_at >= 0) << e.dump();
  const int first = u_at < 0 ? f_at : f_at < 0 ? u_at : std::min(u_at, f_at);
  EXPECT_EQ(e["delay_frames"], first + 1);
  EXPECT_EQ(e["false_alarms"], e["by_signal"]["uncertainty"]["false_alarms"].get<int>() +
                                   e["by_signal"]["features"]["false_alarms"].get<int>());
  EXPECT_EQ(either["steps"][1]["train_images"], 12 - first);
  cfg.adaptation.detect_tap = "nowhere";
  auto method4 = methods::make_method("finetune", {});
  test::expect_error([&] { engine::Trainer(cfg, data, *method4, (d / "run/no_tap").string()).run(); },
                     {"no feature map 'nowhere'"});
}

TEST(Domain, EnvironmentsFillTheWholeAccuracyMatrix) {
  test::TempDir d;
  auto cfg = two_environments(d, false);
  auto data = engine::open_experiment_data(cfg, (d / "cache").string(), 1);
  ASSERT_TRUE(data.domain());
  EXPECT_EQ(data.num_steps(), 2);
  auto method = methods::make_method("finetune", {});
  auto results = engine::Trainer(cfg, data, *method, (d / "run/finetune").string()).run();
  EXPECT_EQ(results["type"], "domain");
  ASSERT_EQ(results["steps"].size(), 2u);
  EXPECT_EQ(results["steps"][1]["new_classes"], nlohmann::json({"b"}));
  // Every environment after every step, the future one included.
  const auto& r = results["accuracy_matrix"];
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j) EXPECT_TRUE(r[i][j].is_number()) << i << "," << j;
  EXPECT_EQ(results["initial_task_miou"].size(), 2u);
  EXPECT_NEAR(results["fwt"].get<double>(), r[0][1].get<double>() - results["initial_task_miou"][1].get<double>(),
              1e-9);
  EXPECT_NEAR(results["bwt"].get<double>(), r[1][0].get<double>() - r[0][0].get<double>(), 1e-9);
  // old / new / all at step 1: the earlier environment, the current one, their mean.
  const auto& t = results["steps"][1]["test"];
  EXPECT_NEAR(t["miou_old"].get<double>(), r[1][0].get<double>(), 1e-9);
  EXPECT_NEAR(t["miou_new"].get<double>(), r[1][1].get<double>(), 1e-9);
  EXPECT_NEAR(t["miou"].get<double>(), (r[1][0].get<double>() + r[1][1].get<double>()) / 2, 1e-9);
}

TEST(Domain, AnUnlabelledEnvironmentNeverReadsItsLabels) {
  // The second environment's training masks are all "ignore": as a labelled step it has no image
  // with a label (an error), as an unlabelled one it learns from pseudo-labels and the weights change.
  test::TempDir d;
  auto labelled = two_environments(d, true);
  auto data = engine::open_experiment_data(labelled, (d / "cache").string(), 1);
  auto method = methods::make_method("finetune", {});
  test::expect_error([&] { engine::Trainer(labelled, data, *method, (d / "run/finetune").string()).run(); },
                     {"no training images"});
  auto unlabelled = two_environments(d, false);
  unlabelled.output_dir = (d / "run2").string();
  // Not even opened: the unlabelled environment's training masks may be missing altogether.
  for (int i = 0; i < 12; ++i) fs::remove(d / "b/masks" / ("tr" + std::to_string(i) + ".png"));
  auto data2 = engine::open_experiment_data(unlabelled, (d / "cache").string(), 1);
  engine::Trainer(unlabelled, data2, *method, (d / "run2/finetune").string()).run();
  const auto before = weights::read_weights((d / "run2/finetune/checkpoints/step0.pt").string());
  const auto after = weights::read_weights((d / "run2/finetune/checkpoints/step1.pt").string());
  size_t changed = 0;
  for (size_t i = 0; i < before.size(); ++i) changed += !torch::equal(before[i].second, after[i].second);
  EXPECT_GT(changed, 10u);
  // Soft pseudo-labels train too.
  auto soft = two_environments(d, false);
  soft.adaptation.pseudo_labels = "soft";
  auto data3 = engine::open_experiment_data(soft, (d / "cache").string(), 1);
  auto r = engine::Trainer(soft, data3, *method, (d / "run3/finetune").string()).run();
  EXPECT_EQ(r["steps"].size(), 2u);
}

TEST(Domain, CrossConsistency) {
  // Jitter: the same layout and statistics family, other pixel values; strength 0 changes nothing.
  torch::manual_seed(1);
  const std::vector<double> mean{0.485, 0.456, 0.406}, std{0.229, 0.224, 0.225};
  auto images = torch::randn({2, 3, 8, 8}) * 0.5;
  const auto m = torch::tensor(mean).view({1, 3, 1, 1}).to(torch::kFloat);
  const auto s = torch::tensor(std).view({1, 3, 1, 1}).to(torch::kFloat);
  auto same = adaptation::photometric_jitter(images, 0, mean, std);
  EXPECT_LT((same - ((images * s + m).clamp(0, 1) - m) / s).abs().max().item<double>(), 1e-5);
  auto jittered = adaptation::photometric_jitter(images, 0.4, mean, std);
  EXPECT_EQ(jittered.sizes(), images.sizes());
  EXPECT_GT((jittered - same).abs().mean().item<double>(), 0.05);
  // In pixel units the result stays an image: within [0, 1].
  auto pixels = jittered * s + m;
  EXPECT_GE(pixels.min().item<double>(), -1e-5);
  EXPECT_LE(pixels.max().item<double>(), 1 + 1e-5);
  test::expect_error([&] { adaptation::photometric_jitter(images, 1.5, mean, std); }, {"strength 1.5"});
  // Both options train an unlabelled environment, and are read from the config by name.
  test::TempDir d;
  auto c = two_environments(d, false);
  c.adaptation.teacher_flip = true;
  c.adaptation.student_jitter = 0.3;
  auto data = engine::open_experiment_data(c, (d / "cache").string(), 1);
  auto method = methods::make_method("finetune", {});
  auto r = engine::Trainer(c, data, *method, (d / "run/finetune").string()).run();
  EXPECT_EQ(r["steps"].size(), 2u);
  test::expect_error(
      [&] {
        parse("dataset: {name: folder, num_classes: 5}\ntrain: {iterations: 1}\nadaptation: {student_jitter: 2}\n", d);
      },
      {"adaptation.student_jitter", "[0, 1)"});
}

TEST(Domain, StudentScaleChangesOnlyUnlabelledSteps) {
  // The same run with and without the scale consistency: the labelled step is identical, the
  // unlabelled one learns something else.
  test::TempDir d;
  auto plain = two_environments(d, false);
  auto scaled = plain;
  scaled.adaptation.student_scale = 0.4;
  scaled.output_dir = (d / "run_scaled").string();
  auto method = methods::make_method("finetune", {});
  auto data = engine::open_experiment_data(plain, (d / "cache").string(), 1);
  engine::Trainer(plain, data, *method, (d / "run/finetune").string()).run();
  auto data_scaled = engine::open_experiment_data(scaled, (d / "cache").string(), 1);
  engine::Trainer(scaled, data_scaled, *method, (d / "run_scaled/finetune").string()).run();
  auto differing = [&](const std::string& name) {
    const auto a = weights::read_weights((d / "run/finetune/checkpoints" / name).string());
    const auto b = weights::read_weights((d / "run_scaled/finetune/checkpoints" / name).string());
    size_t n = 0;
    for (size_t i = 0; i < a.size(); ++i) n += !torch::equal(a[i].second, b[i].second);
    return n;
  };
  EXPECT_EQ(differing("step0.pt"), 0u);
  EXPECT_GT(differing("step1.pt"), 10u);
  test::expect_error(
      [&] {
        parse("dataset: {name: folder, num_classes: 5}\ntrain: {iterations: 1}\nadaptation: {student_scale: 1}\n", d);
      },
      {"adaptation.student_scale", "[0, 1)"});
}

TEST(Domain, JointTrainsOnEveryEnvironmentSoFarWithItsLabels) {
  test::TempDir d;
  auto c = two_environments(d, false);  // b is marked unlabelled: joint, the reference, reads its masks anyway
  auto data = engine::open_experiment_data(c, (d / "cache").string(), 1);
  // The frames of both environments read as one dataset, in order.
  data::ConcatDataset both({data.environments[0].train_with_masks, data.environments[1].train_with_masks}, "a + b");
  ASSERT_EQ(both.size(), data.environments[0].train_with_masks->size() + data.environments[1].train_with_masks->size());
  const size_t first_of_b = data.environments[0].train_with_masks->size();
  EXPECT_EQ(both.id(first_of_b), data.environments[1].train_with_masks->id(0));
  EXPECT_TRUE(both.load_mask(first_of_b).size() == cv::Size(32, 32));
  EXPECT_EQ(cv::countNonZero(both.load_mask(first_of_b) != 255), 0);  // b's own (all-ignore) mask
  test::expect_error([&] { both.load_mask(both.size()); }, {"a + b", "out of range"});
  auto joint = methods::make_method("joint", {});
  auto r = engine::Trainer(c, data, *joint, (d / "run/joint").string()).run();
  ASSERT_EQ(r["steps"].size(), 2u);
  EXPECT_EQ(r["steps"][0]["train_images"].get<size_t>(), data.environments[0].train_with_masks->size());
  EXPECT_EQ(r["steps"][1]["train_images"].get<size_t>(), both.size());
  EXPECT_TRUE(r["accuracy_matrix"][1][0].is_number());
  // Without the masks of the "unlabelled" environment the reference cannot be trained.
  for (int i = 0; i < 12; ++i) fs::remove(d / "b/masks" / ("tr" + std::to_string(i) + ".png"));
  c.output_dir = (d / "run2").string();
  auto data2 = engine::open_experiment_data(c, (d / "cache").string(), 1);
  test::expect_error([&] { engine::Trainer(c, data2, *joint, (d / "run2/joint").string()).run(); }, {"tr"});
  // Methods built around new classes are refused by name.
  auto mib = methods::make_method("mib", {});
  test::expect_error([&] { engine::Trainer(c, data2, *mib, (d / "run2/mib").string()).run(); },
                     {"'mib'", "built around new classes", "joint"});
}

TEST(Domain, PseudoLabelsCanBeScoredAgainstTheMasksForBenchmarks) {
  test::TempDir d;
  auto c = two_environments(d, false);
  test::write_tiny_dataset(d / "b");  // b's masks back (two_environments blanked them)
  auto data = engine::open_experiment_data(c, (d / "cache").string(), 1);
  const auto& b = *data.environments[1].train_with_masks;
  const auto lut = data.scenario->train_labels(0);
  const int classes = data.scenario->classes_after(0);
  // The masks themselves score perfectly; with half of one frame's pixels relabelled, less.
  std::vector<cv::Mat> maps;
  for (size_t i = 0; i < b.size(); ++i) {
    cv::Mat m = b.load_mask(i);
    data::remap_labels(m, lut);
    maps.push_back(m);
  }
  auto perfect = adaptation::score_pseudo_labels(maps, b, lut, classes);
  EXPECT_DOUBLE_EQ(perfect.accuracy, 1.0);
  EXPECT_DOUBLE_EQ(perfect.miou, 1.0);
  EXPECT_GT(perfect.labelled_fraction, 0.5);
  for (auto& m : maps) m(cv::Rect(0, 0, m.cols, m.rows / 2)).setTo(cv::Scalar((classes - 1)));
  auto worse = adaptation::score_pseudo_labels(maps, b, lut, classes);
  EXPECT_LT(worse.accuracy, 0.9);
  EXPECT_LT(worse.miou, 0.9);
  for (auto& m : maps) m.setTo(cv::Scalar(255));
  EXPECT_EQ(adaptation::score_pseudo_labels(maps, b, lut, classes).labelled_fraction, 0.0);
  // In a run: the unlabelled step's results carry the score; the labelled one none.
  c.adaptation.score_pseudo_labels = true;
  auto method = methods::make_method("finetune", {});
  auto r = engine::Trainer(c, data, *method, (d / "run/finetune").string()).run();
  const auto& score = r["steps"][1]["pseudo_labels"]["score"];
  ASSERT_TRUE(score.is_object()) << r["steps"][1].dump();
  for (const char* key : {"labelled_fraction", "accuracy", "miou"}) {
    EXPECT_GE(score[key].get<double>(), 0) << key;
    EXPECT_LE(score[key].get<double>(), 1) << key;
  }
  EXPECT_DOUBLE_EQ(score["labelled_fraction"].get<double>(), 1.0);  // threshold 0: every pixel
  EXPECT_TRUE(r["steps"][0]["pseudo_labels"].is_null());
}
