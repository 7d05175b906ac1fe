// Mixed precision: the autocast scope and `train.precision: bf16` through the trainer.
#include <gtest/gtest.h>

#include <fstream>
#include <limits>

#include "cseg/config/config.h"
#include "cseg/core/grad_scaler.h"
#include "cseg/core/precision.h"
#include "cseg/engine/checkpoint.h"
#include "cseg/models/segmenter.h"
#include "cseg/engine/trainer.h"
#include "fixtures.h"
#include "tiny_experiment.h"

using namespace cseg;

TEST(Precision, Bf16ScopeRunsConvolutionsInBfloat16AndRestores) {
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(3, 4, 3));
  auto x = torch::randn({1, 3, 8, 8});
  {
    core::AutocastScope bf16("bf16");
    EXPECT_EQ(conv->forward(x).scalar_type(), torch::kBFloat16);
  }
  EXPECT_EQ(conv->forward(x).scalar_type(), torch::kFloat);
  {
    core::AutocastScope fp32("fp32");
    EXPECT_EQ(conv->forward(x).scalar_type(), torch::kFloat);
  }
  test::expect_error([] { core::AutocastScope bad("fp8"); }, {"'fp8'", "fp32, bf16 or fp16"});
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
  EXPECT_GE(r["steps"][1]["test"]["miou"].get<double>(), 0.0);
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
  config::ModelConfig mc;
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
  test::expect_error([&] { config::parse_experiment(config::load({(d / "exp.yaml").string(), {}, ""})); },
                     {"train.precision", "fp16", "needs device: cuda", "use bf16"});
}
