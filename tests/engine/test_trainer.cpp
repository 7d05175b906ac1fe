#include <gtest/gtest.h>

#include "cseg/core/files.h"
#include "cseg/core/runtime.h"
#include "cseg/engine/checkpoint.h"
#include "cseg/engine/trainer.h"
#include "step_checks.h"
#include "tiny_experiment.h"

using namespace cseg;

namespace {
/// Records every hook call, to prove the order the trainer promises (methods/method.h).
class RecordingMethod : public methods::Method {
 public:
  std::vector<std::string> calls;
  std::vector<int> logit_channels;
  std::string name() const override { return "recording"; }
  void on_step_begin(methods::StepContext& c) override {
    calls.push_back(fmt::format("step_begin {} old={} all={}", c.step, c.num_old_classes, c.num_classes));
  }
  void before_forward(methods::StepContext&, Batch&) override { calls.push_back("before_forward"); }
  torch::Tensor task_loss(methods::StepContext& c, const Batch& b, const models::ModelOutput& out) override {
    calls.push_back("task_loss");
    logit_channels.push_back(static_cast<int>(out.logits.size(1)));
    return Method::task_loss(c, b, out);
  }
  void add_loss_terms(methods::StepContext&, const Batch&, const models::ModelOutput& out,
                      methods::LossTerms& terms) override {
    calls.push_back("add_loss_terms");
    terms.emplace_back("probe", out.logits.sum() * 0);
  }
  void after_backward(methods::StepContext& c) override {
    // Gradients exist here and the optimizer has not stepped yet.
    bool any = false;
    for (auto& p : c.model->parameters()) any = any || (p.grad().defined() && p.grad().abs().sum().item<double>() > 0);
    calls.push_back(any ? "after_backward(grad)" : "after_backward(no grad)");
  }
  void on_step_end(methods::StepContext& c) override { calls.push_back(fmt::format("step_end {}", c.step)); }
};
}  // namespace

TEST(Trainer, HookOrderResultsAndCheckpoints) {
  test::TempDir d;
  auto cfg = test::tiny_experiment(d.path(), 2);
  core::configure_runtime({1, false});
  auto data = engine::open_experiment_data(cfg, "", 1);
  RecordingMethod method;
  engine::Trainer trainer(cfg, data, method, (d / "run").string());
  auto results = trainer.run();

  const std::vector<std::string> iteration{"before_forward", "task_loss", "add_loss_terms", "after_backward(grad)"};
  std::vector<std::string> expected{"step_begin 0 old=0 all=3"};
  for (int i = 0; i < 2; ++i) expected.insert(expected.end(), iteration.begin(), iteration.end());
  expected.push_back("step_end 0");
  expected.push_back("step_begin 1 old=3 all=5");
  for (int i = 0; i < 2; ++i) expected.insert(expected.end(), iteration.begin(), iteration.end());
  expected.push_back("step_end 1");
  EXPECT_EQ(method.calls, expected);
  EXPECT_EQ(method.logit_channels, (std::vector<int>{3, 3, 5, 5}));  // a head was added for step 1

  ASSERT_EQ(results["steps"].size(), 2u);
  const auto& s1 = results["steps"][1];
  EXPECT_FALSE(s1["test"]["miou_old"].is_null());
  EXPECT_FALSE(s1["test"]["miou_new"].is_null());
  EXPECT_EQ(s1["test"]["per_class_iou"].size(), 5u);
  // Two iterations timed: a median and a 90th percentile no smaller, within the loop's time.
  const double median_ms = s1["iteration_ms"]["median"].get<double>(), p90_ms = s1["iteration_ms"]["p90"].get<double>();
  EXPECT_GT(median_ms, 0.0);
  EXPECT_GE(p90_ms, median_ms);
  EXPECT_LE(p90_ms, 1000 * s1["train_seconds"].get<double>());
  EXPECT_EQ(results["accuracy_matrix"].size(), 2u);
  EXPECT_TRUE(results["accuracy_matrix"][0][1].is_null());
  EXPECT_FALSE(results["forgetting"][0].is_null());
  for (const char* f : {"results.json", "per_class_iou.csv", "scenario.json", "metrics.jsonl", "checkpoints/step0.pt",
                        "checkpoints/step1.pt"})
    EXPECT_TRUE(std::filesystem::exists(d / "run" / f)) << f;
  EXPECT_FALSE(std::filesystem::exists(d / "run/checkpoints/step1_last.pt"));  // removed at step end
  const std::string metrics = core::read_text((d / "run/metrics.jsonl").string());
  EXPECT_NE(metrics.find("\"loss_probe\""), std::string::npos);  // each named term is logged
  EXPECT_NE(metrics.find("\"loss_ce\""), std::string::npos);

  // A second run on the same folder has nothing left to do: no hook runs, same results.
  RecordingMethod again;
  auto rerun = engine::Trainer(cfg, data, again, (d / "run").string()).run();
  EXPECT_TRUE(again.calls.empty());
  EXPECT_EQ(rerun, results);  // steps and the summary (accuracy matrix, forgetting, ...)
}

TEST(Trainer, JointTrainsOnEverythingSeen) {
  test::TempDir d;
  auto cfg = test::tiny_experiment(d.path(), 1);
  auto data = engine::open_experiment_data(cfg, "", 1);
  methods::Joint joint;
  auto r = engine::Trainer(cfg, data, joint, (d / "run").string()).run();
  // Step 1 of joint sees every image with a seen class (all 12); fine-tuning only those with 3 or 4.
  EXPECT_EQ(r["steps"][1]["train_images"].get<size_t>(), 12u);
  EXPECT_EQ(data.scenario->train_images(1, data.train.index).size(), 9u);
}

// Every model family trains two steps through the trainer from the config (tiny inputs).
TEST(Trainer, EveryModelFamilyTrainsFromTheConfig) {
  test::TempDir d;
  test::write_tiny_dataset(d / "data");
  struct Case {
    std::string name;
    std::function<void(models::ModelOptions&)> set;
  };
  const std::vector<Case> cases{
      {"deeplabv3",
       [](models::ModelOptions& m) {
         m.name = "deeplabv3";
         m.backbone = "resnet18";
         m.aux = true;
       }},
      {"deeplabv3plus",
       [](models::ModelOptions& m) {
         m.name = "deeplabv3plus";
         m.backbone = "resnet18";
         m.norm = "bn_leaky";
       }},
      {"deeplabv3_frozen_os8",
       [](models::ModelOptions& m) {
         m.name = "deeplabv3";
         m.backbone = "resnet18";
         m.output_stride = 8;
         m.norm = "frozen_bn";
       }},
      {"deeplabv3_mib",
       [](models::ModelOptions& m) {
         m.name = "deeplabv3";
         m.backbone = "resnet18";
         m.layout = "mib";
         m.norm = "bn_leaky";
       }},
      {"unet",
       [](models::ModelOptions& m) {
         m.name = "unet";
         m.unet_channels = 8;
         m.aux = true;
       }},
      {"unet_transposed",
       [](models::ModelOptions& m) {
         m.name = "unet";
         m.unet_channels = 8;
         m.unet_upsampling = "transposed";
       }},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto cfg = test::tiny_config((d / "data").string(), (d / c.name).string(), 2);
    c.set(cfg.model);
    auto data = engine::open_experiment_data(cfg, "", 1);
    methods::FineTune ft;
    auto r = engine::Trainer(cfg, data, ft, (d / c.name).string()).run();
    ASSERT_EQ(r["steps"].size(), 2u);
    EXPECT_TRUE(std::filesystem::exists(d / c.name / "checkpoints" / "step1.pt"));
    for (const auto& step : r["steps"]) test::expect_scores_follow_the_confusion_matrix(step);
    // The checkpoint restores the model with both heads.
    auto model = engine::build_model_for_step(cfg, *data.scenario, 1);
    EXPECT_NO_THROW(
        engine::load_checkpoint((d / c.name / "checkpoints" / "step1.pt").string(), *model, nullptr, nullptr));
    EXPECT_EQ(model->head_sizes(), (std::vector<int>{3, 2}));
  }
}

TEST(Trainer, PretrainedWeightsFromTheConfig) {
  test::TempDir d;
  auto cfg = test::tiny_experiment(d.path(), 1, "a");
  cfg.model.name = "unet";
  cfg.model.unet_channels = 8;
  auto data = engine::open_experiment_data(cfg, "", 1);
  methods::FineTune ft;
  engine::Trainer(cfg, data, ft, (d / "a").string()).run();
  // Start a new run from run a's step-0 weights, skipping its classifier.
  auto b = cfg;
  b.output_dir = (d / "b").string();
  b.model.pretrained = (d / "a" / "checkpoints" / "step0.pt").string();
  b.model.pretrained_mode = "skip_classifier";
  engine::Trainer(b, data, ft, (d / "b").string()).run();
  // Run b started from a's weights: after one iteration its first convolution is far nearer to
  // a's than a freshly initialised model's is.
  auto weight = [&](const std::filesystem::path& checkpoint) {
    auto m = engine::build_model_for_step(cfg, *data.scenario, 0);
    if (!checkpoint.empty()) engine::load_checkpoint(checkpoint.string(), *m, nullptr, nullptr);
    for (const auto& p : m->named_parameters())
      if (p.key() == "inc.double_conv.0.weight") return p.value().detach().clone();
    ADD_FAILURE() << "no parameter inc.double_conv.0.weight";
    return torch::Tensor();
  };
  const auto a0 = weight(d / "a" / "checkpoints" / "step0.pt");
  const double from_a = (weight(d / "b" / "checkpoints" / "step0.pt") - a0).norm().item<double>();
  const double fresh = (weight({}) - a0).norm().item<double>();
  EXPECT_LT(from_a, 0.1 * fresh) << "b's step 0 is " << from_a << " from a's, a fresh model " << fresh;
  // A file that does not fit fails before training, naming the file and the keys.
  auto c = cfg;
  c.output_dir = (d / "c").string();
  c.model.unet_channels = 16;
  c.model.pretrained = b.model.pretrained;
  test::expect_error([&] { engine::Trainer(c, data, ft, (d / "c").string()).run(); },
                     {"step0.pt: the weights do not fit the model", "with another shape (inc.double_conv.0.weight"});
}
