// The `device:` key and the GPU path. The GPU tests skip themselves without CUDA (Debian's
// LibTorch is CPU-only; CI has no GPU); the checks of the key run everywhere.
#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "cseg/config/config.h"
#include "cseg/config/experiment.h"
#include "cseg/core/batch.h"
#include "cseg/core/device.h"
#include "cseg/core/files.h"
#include "cseg/core/runtime.h"
#include "cseg/engine/checkpoint.h"
#include "cseg/engine/experiment_data.h"
#include "cseg/engine/trainer.h"
#include "cseg/methods/continual_losses.h"
#include "cseg/methods/method.h"
#include "fixtures.h"
#include "tiny_experiment.h"

using namespace cseg;

TEST(Device, NamesAreCheckedWhenTheConfigIsRead) {
  EXPECT_EQ(core::parse_device("cpu"), torch::Device(torch::kCPU));
  test::expect_error([] { core::parse_device("gpu"); }, {"device: 'gpu' is not a device", "cpu, cuda or cuda:N"});
  test::expect_error([] { core::parse_device("cuda:x"); }, {"'cuda:x' is not a device"});
  if (!torch::cuda::is_available()) {
    test::expect_error([] { core::parse_device("cuda"); }, {"device: 'cuda' asks for a GPU", "use device: cpu"});
  } else {
    EXPECT_EQ(core::parse_device("cuda").type(), torch::kCUDA);
    test::expect_error([] { core::parse_device("cuda:99"); }, {"'cuda:99' but only"});
  }
  test::TempDir d;
  std::ofstream(d / "exp.yaml") << "device: tpu\n";
  test::expect_error(
      [&] {
        config::parse_experiment(config::load({(d / "exp.yaml").string(), {}, ""}));
      },
      {"device: 'tpu' is not a device"});
}

TEST(Device, ABatchMovesEveryTensorItHolds) {
  Batch b;
  b.images = torch::zeros({1, 3, 2, 2});
  b.labels = torch::zeros({1, 2, 2}, torch::kLong);
  b.to(torch::kCPU);  // no copy on the device it is on
  EXPECT_TRUE(b.images.defined() && b.labels.defined() && !b.depth.defined());
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA: moving to a GPU not checked";
  b.to(torch::Device(torch::kCUDA));
  EXPECT_TRUE(b.images.is_cuda() && b.labels.is_cuda());
}

// On a GPU, MiB's losses take the composite path; on the CPU the fused kernel: same values.
TEST(Device, UnbiasedLossesAgreeOnGpuAndCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA";
  torch::manual_seed(1);
  auto x = torch::randn({2, 6, 5, 7}), old = torch::randn({2, 3, 5, 7});
  auto t = torch::randint(0, 6, {2, 5, 7}, torch::kLong);
  const auto cuda = torch::Device(torch::kCUDA);
  EXPECT_NEAR(methods::unbiased_ce(x, t, 3).item<double>(),
              methods::unbiased_ce(x.to(cuda), t.to(cuda), 3).item<double>(), 1e-5);
  EXPECT_NEAR(methods::unbiased_kd(x, old).item<double>(),
              methods::unbiased_kd(x.to(cuda), old.to(cuda)).item<double>(), 1e-5);
}

// Two steps of every method on the GPU: each runs with its own state (replay buffers, EWC's
// importance, SDR's and BACS's prototypes, SSUL's and BACS's heads) on the model's device, a step
// re-run from the previous step's checkpoint resumes there, and fine-tuning's and MiB's accuracy
// is the CPU run's within what float reordering moves in a few iterations.
TEST(Device, EveryMethodTrainsAndResumesOnTheGpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA";
  test::TempDir d;
  test::write_tiny_dataset(d / "data");
  core::configure_runtime({1, false});
  for (const auto& name : methods::method_names()) {
    SCOPED_TRACE(name);
    std::vector<double> miou;
    for (const std::string device : {"cpu", "cuda"}) {
      if (device == "cpu" && name != "finetune" && name != "mib") continue;
      const auto dir = d / (name + device);
      auto cfg = test::tiny_config((d / "data").string(), dir.string(), 3);
      cfg.device = device;
      cfg.train.workers = 0;
      auto data = engine::open_experiment_data(cfg, "", 1);
      auto method = methods::make_method(name);
      auto r = engine::Trainer(cfg, data, *method, dir.string()).run();
      ASSERT_EQ(r["steps"].size(), 2u);
      miou.push_back(r["steps"].back()["test"]["miou"].get<double>());
      EXPECT_TRUE(std::isfinite(miou.back()));
      if (device != "cuda") continue;
      // Forget step 1; the re-run loads step 0's checkpoint (the method's state with it) onto the GPU.
      std::filesystem::remove(dir / "checkpoints" / "step1.pt");
      auto saved = nlohmann::json::parse(core::read_text((dir / "results.json").string()));
      saved["steps"].erase(1);
      core::write_text_atomic((dir / "results.json").string(), saved.dump());
      auto again = methods::make_method(name);
      auto rerun = engine::Trainer(cfg, data, *again, dir.string()).run();
      ASSERT_EQ(rerun["steps"].size(), 2u);
      EXPECT_NEAR(rerun["steps"][1]["test"]["miou"].get<double>(), miou.back(), 0.05);
    }
    if (miou.size() == 2) EXPECT_NEAR(miou[0], miou[1], 0.05);
  }
}

// fp16 autocast with loss scaling on the GPU: two steps of MiB train to a finite accuracy near
// the fp32 run's, and the step checkpoints carry the loss scale.
TEST(Device, Fp16TrainingOnTheGpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA";
  test::TempDir d;
  test::write_tiny_dataset(d / "data");
  core::configure_runtime({1, false});
  std::vector<double> miou;
  for (const std::string precision : {"fp32", "fp16"}) {
    const auto dir = d / precision;
    auto cfg = test::tiny_config((d / "data").string(), dir.string(), 3);
    cfg.device = "cuda";
    cfg.train.workers = 0;
    cfg.train.precision = precision;
    auto data = engine::open_experiment_data(cfg, "", 1);
    auto method = methods::make_method("mib");
    auto r = engine::Trainer(cfg, data, *method, dir.string()).run();
    miou.push_back(r["steps"].back()["test"]["miou"].get<double>());
    EXPECT_TRUE(std::isfinite(miou.back()));
    const auto state = engine::read_checkpoint_state((dir / "checkpoints" / "step1.pt").string());
    EXPECT_EQ(state.loss_scaler.has_value(), precision == "fp16");
  }
  EXPECT_NEAR(miou[0], miou[1], 0.1);
}
