// Mixed precision: the autocast scope and `train.precision: bf16` through the trainer.
#include <gtest/gtest.h>

#include "cseg/core/precision.h"
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
  test::expect_error([] { core::AutocastScope bad("fp16"); }, {"'fp16'", "fp32 or bf16"});
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
  test::write_tiny_dataset(d / "data");
  auto cfg = test::tiny_config((d / "data").string(), (d / "run").string(), 2);
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
