// The `device:` key and the GPU path. The GPU tests skip themselves without CUDA (Debian's
// LibTorch is CPU-only; CI has no GPU); the checks of the key run everywhere.
#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <fstream>

#include "cseg/config/config.h"
#include "cseg/config/experiment.h"
#include "cseg/core/batch.h"
#include "cseg/core/device.h"
#include "cseg/core/runtime.h"
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
  test::expect_error([&] { config::parse_experiment(config::load({(d / "exp.yaml").string(), {}, ""})); },
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
  EXPECT_NEAR(methods::unbiased_ce(x, t, 3).item<double>(), methods::unbiased_ce(x.to(cuda), t.to(cuda), 3).item<double>(), 1e-5);
  EXPECT_NEAR(methods::unbiased_kd(x, old).item<double>(), methods::unbiased_kd(x.to(cuda), old.to(cuda)).item<double>(), 1e-5);
}

// Two steps of fine-tuning and MiB on the GPU: they run, the checkpoints reload, and the
// accuracy is the CPU run's within what float reordering moves in a few iterations.
TEST(Device, TrainingOnTheGpuMatchesTheCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA";
  test::TempDir d;
  test::write_tiny_dataset(d / "data");
  core::configure_runtime({1, false});
  for (const std::string name : {"finetune", "mib"}) {
    std::vector<double> miou;
    for (const std::string device : {"cpu", "cuda"}) {
      auto cfg = test::tiny_config((d / "data").string(), (d / (name + device)).string(), 3);
      cfg.device = device;
      cfg.train.workers = 0;
      auto data = engine::open_experiment_data(cfg, "", 1);
      auto method = methods::make_method(name);
      auto r = engine::Trainer(cfg, data, *method, (d / (name + device)).string()).run();
      miou.push_back(r["steps"].back()["test"]["miou"].get<double>());
    }
    EXPECT_NEAR(miou[0], miou[1], 0.05) << name;
  }
}
