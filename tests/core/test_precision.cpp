// Mixed precision: the autocast scope and `train.precision: bf16` through the trainer.
#include <gtest/gtest.h>

#include <fstream>
#include <limits>

#include "cseg/config/config.h"
#include "cseg/core/grad_scaler.h"
#include "cseg/core/precision.h"
#include "cseg/engine/checkpoint.h"
#include "cseg/engine/trainer.h"
#include "cseg/models/segmenter.h"
#include "fixtures.h"
#include "step_checks.h"
#include "tiny_experiment.h"

using namespace cseg;

TEST(Precision, Bf16ScopeRunsConvolutionsInBfloat16AndRestores) {
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(3, 4, 3));
  auto x = torch::randn({1, 3, 8, 8});
  {
    core::AutocastScope bf16("bf16", false);
    EXPECT_EQ(conv->forward(x).scalar_type(), torch::kBFloat16);
  }
  EXPECT_EQ(conv->forward(x).scalar_type(), torch::kFloat);
  {
    core::AutocastScope fp32("fp32", false);
    EXPECT_EQ(conv->forward(x).scalar_type(), torch::kFloat);
  }
  test::expect_error([] { core::AutocastScope bad("fp8", false); }, {"'fp8'", "fp32, bf16 or fp16"});
}

TEST(Precision, EachPrecisionTurnsOnTheModelDevicesAutocast) {
  // bf16 on a GPU is CUDA autocast in bfloat16 (it once turned on the CPU's, training float32).
  auto p = core::autocast_plan("bf16", true);
  EXPECT_TRUE(p.active);
  EXPECT_TRUE(p.cuda);
  EXPECT_EQ(p.dtype, "bfloat16");
  p = core::autocast_plan("bf16", false);
  EXPECT_TRUE(p.active);
  EXPECT_FALSE(p.cuda);
  EXPECT_EQ(p.dtype, "bfloat16");
  p = core::autocast_plan("fp16", true);
  EXPECT_TRUE(p.cuda);
  EXPECT_EQ(p.dtype, "float16");
  EXPECT_FALSE(core::autocast_plan("fp32", true).active);
  test::expect_error([] { core::autocast_plan("fp16", false); }, {"fp16", "CUDA", "bf16"});
}

namespace {
/// Fine-tuning that records the dtypes of what its loss sees.
class DtypeProbe : public methods::FineTune {
 public:
  std::set<c10::ScalarType> logits, decoder;
  bool needs_features() const override { return true; }  // it reads the decoder's map
  torch::Tensor task_loss(methods::StepContext& c, const Batch& b, const models::ModelOutput& out) override {
    logits.insert(out.logits.scalar_type());
    decoder.insert(out.feature("decoder").scalar_type());
    return FineTune::task_loss(c, b, out);
  }
};
}  // namespace

TEST(Precision, TrainerRunsTheForwardPassUnderBf16Autocast) {
  test::TempDir d;
  auto cfg = test::tiny_experiment(d.path(), 2);
  cfg.train.precision = "bf16";
  auto data = engine::open_experiment_data(cfg, "", 1);
  DtypeProbe probe;
  engine::Trainer trainer(cfg, data, probe, (d / "run").string());
  auto r = trainer.run();
  // The network ran in bfloat16; its logits reach the losses as float.
  EXPECT_EQ(probe.decoder, (std::set<c10::ScalarType>{torch::kBFloat16}));
  EXPECT_EQ(probe.logits, (std::set<c10::ScalarType>{torch::kFloat}));
  ASSERT_EQ(r["steps"].size(), 2u);
  for (const auto& step : r["steps"]) test::expect_scores_follow_the_confusion_matrix(step);
}

// fp16's loss scaling: the scaled loss's gradients come back to their true size; a step whose
// gradients overflowed is reported (to be skipped) and halves the scale; a run of good steps
// doubles it. Plain tensor ops, so checked here on the CPU.
TEST(Precision, GradScalerUnscalesSkipsOverflowsAndAdaptsTheScale) {
  core::GradScaler scaler({8.0, 2.0, 0.5, 2});
  auto w = torch::ones({3}, torch::requires_grad());
  auto unused = torch::ones({2}, torch::requires_grad());  // no gradient: ignored
  scaler.scale((w * torch::tensor({1.f, 2.f, 3.f})).sum()).backward();
  EXPECT_TRUE(torch::allclose(w.grad(), torch::tensor({8.f, 16.f, 24.f})));
  EXPECT_TRUE(scaler.unscale({w, unused}));
  EXPECT_TRUE(torch::allclose(w.grad(), torch::tensor({1.f, 2.f, 3.f})));
  scaler.update(true);
  EXPECT_EQ(scaler.current(), 8.0);
  scaler.update(true);
  EXPECT_EQ(scaler.current(), 16.0);  // two good steps in a row
  for (float bad : {std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN()}) {
    w.mutable_grad().fill_(1.f);
    w.mutable_grad()[1] = bad;
    EXPECT_FALSE(scaler.unscale({w}));
    scaler.update(false);
  }
  EXPECT_EQ(scaler.current(), 4.0);
  EXPECT_EQ(scaler.skipped(), 2);
  scaler.update(true);
  EXPECT_EQ(scaler.current(), 4.0);  // the run of good steps starts again after an overflow
}

// A resumed fp16 step goes on with the loss scale it had reached: the scaler's state rides in
// the step checkpoint, and a checkpoint of a run without one has none.
TEST(Precision, TheLossScaleIsKeptInTheCheckpoint) {
  core::GradScaler scaler({8.0, 2.0, 0.5, 2});
  scaler.update(false);  // 4, one skipped
  scaler.update(true);   // one good step towards growing
  test::TempDir d;
  models::ModelOptions mc;
  mc.name = "fast_scnn";
  auto model = models::make_model(mc, 3);
  engine::TrainState state;
  state.heads = model->head_sizes();
  engine::save_checkpoint((d / "plain.pt").string(), *model, nullptr, nullptr, state);
  EXPECT_FALSE(engine::read_checkpoint_state((d / "plain.pt").string()).loss_scaler.has_value());
  state.loss_scaler = scaler.state();
  engine::save_checkpoint((d / "fp16.pt").string(), *model, nullptr, nullptr, state);
  const auto loaded = engine::load_checkpoint((d / "fp16.pt").string(), *model, nullptr, nullptr);
  ASSERT_TRUE(loaded.loss_scaler.has_value());
  core::GradScaler resumed({8.0, 2.0, 0.5, 2});
  resumed.restore(*loaded.loss_scaler);
  EXPECT_EQ(resumed.current(), 4.0);
  EXPECT_EQ(resumed.skipped(), 1);
  resumed.update(true);  // the second good step in a row: the run was carried over
  EXPECT_EQ(resumed.current(), 8.0);
}

TEST(Precision, Fp16NeedsACudaDevice) {
  test::TempDir d;
  std::ofstream(d / "exp.yaml") << "dataset: {root: /tmp}\ntrain: {precision: fp16, iterations: 1}\n";
  test::expect_error(
      [&] {
        config::parse_experiment(config::load({(d / "exp.yaml").string(), {}, ""}));
      },
      {"train.precision", "fp16", "needs device: cuda", "use bf16"});
}

namespace {
/// Fine-tuning that counts its update hooks and, at one iteration of step 0, adds a NaN term.
class HookCounter : public methods::FineTune {
 public:
  int backward = 0, stepped = 0;
  int64_t nan_at = -1;
  void after_backward(methods::StepContext&) override { ++backward; }
  void after_optimizer_step(methods::StepContext&) override { ++stepped; }
  void add_loss_terms(methods::StepContext& c, const Batch&, const models::ModelOutput&,
                      methods::LossTerms& t) override {
    if (c.step == 0 && c.iteration == nan_at)
      t.emplace_back("nan", torch::tensor(std::numeric_limits<float>::quiet_NaN()));
  }
};
}  // namespace

TEST(Precision, AnOverflowedStepRunsNeitherTheOptimizerNorTheMethodsHooks) {
  auto w = torch::ones({3}, torch::requires_grad());
  torch::optim::SGD opt({w}, torch::optim::SGDOptions(0.1));
  HookCounter method;
  methods::StepContext ctx;
  core::GradScaler scaler;
  // fp16: the scaled gradient overflowed. Nothing moves, no hook runs (EWC, PI and RW would add
  // the inf to their importance), the scale halves.
  w.mutable_grad() = torch::tensor({1.0f, std::numeric_limits<float>::infinity(), 2.0f});
  EXPECT_FALSE(engine::apply_update(method, ctx, opt, &scaler, {w}, true));
  EXPECT_TRUE(torch::equal(w, torch::ones({3})));
  EXPECT_EQ(method.backward, 0);
  EXPECT_EQ(method.stepped, 0);
  EXPECT_EQ(scaler.skipped(), 1);
  EXPECT_DOUBLE_EQ(scaler.current(), 32768.0);
  // A good step: unscaled gradient 1, one SGD step of 0.1, each hook once.
  w.mutable_grad() = torch::full({3}, 32768.0f);
  EXPECT_TRUE(engine::apply_update(method, ctx, opt, &scaler, {w}, true));
  EXPECT_TRUE(torch::allclose(w, torch::full({3}, 0.9f)));
  EXPECT_EQ(method.backward, 1);
  EXPECT_EQ(method.stepped, 1);
  // Without a scaler: a NaN gradient, or a non-finite loss, is not applied either.
  w.mutable_grad() = torch::tensor({0.0f, std::numeric_limits<float>::quiet_NaN(), 0.0f});
  EXPECT_FALSE(engine::apply_update(method, ctx, opt, nullptr, {w}, true));
  w.mutable_grad() = torch::ones({3});
  EXPECT_FALSE(engine::apply_update(method, ctx, opt, nullptr, {w}, false));
  EXPECT_TRUE(torch::allclose(w, torch::full({3}, 0.9f)));
  EXPECT_EQ(method.backward, 1);
}

TEST(Precision, ANonFiniteLossStopsBeforeTheUpdateOrIsSkipped) {
  test::TempDir d;
  auto cfg = test::tiny_experiment(d.path(), 4);
  auto data = engine::open_experiment_data(cfg, "", 1);
  {
    HookCounter method;
    method.nan_at = 2;
    engine::Trainer trainer(cfg, data, method, (d / "stop").string());
    test::expect_error([&] { trainer.run(); }, {"iteration 2", "nan", "train.nonfinite"});
    EXPECT_EQ(method.stepped, 2);  // iterations 0 and 1 were applied, 2 was not
  }
  cfg.train.nonfinite = "skip";
  HookCounter method;
  method.nan_at = 2;
  auto r = engine::Trainer(cfg, data, method, (d / "skip").string()).run();
  EXPECT_EQ(r["steps"][0]["skipped_nonfinite"], 1);
  EXPECT_EQ(r["steps"][1]["skipped_nonfinite"], 0);
  EXPECT_EQ(method.stepped, 3 + 4);
}
