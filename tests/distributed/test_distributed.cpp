// Data-parallel training on c10d (Gloo over loopback): the loader's shards, the collectives and
// gradient averaging, and the end-to-end check that 2 processes on a global batch end with the
// same weights as 1 process on that batch.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "cseg/core/files.h"
#include "cseg/data/datasets.h"
#include "cseg/data/loader.h"
#include "cseg/distributed/process_group.h"
#include "cseg/distributed/sync_batch_norm.h"
#include "cseg/models/layers.h"
#include "cseg/weights/load.h"
#include "tiny_experiment.h"

using namespace cseg;
namespace fs = std::filesystem;

namespace {

int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

/// Runs `fn(group)` on `world` threads, each its own rank of one process group.
void with_group(int world, const std::function<void(distributed::ProcessGroup&)>& fn) {
  const int port = free_port();
  std::vector<std::thread> threads;
  std::vector<std::string> errors(world);
  for (int r = 0; r < world; ++r)
    threads.emplace_back([&, r] {
      try {
        distributed::Environment env;
        env.rank = env.local_rank = r;
        env.world_size = world;
        env.master_port = port;
        auto group = distributed::ProcessGroup::connect(env, std::chrono::seconds(60));
        fn(*group);
      } catch (const std::exception& e) {
        errors[r] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  for (int r = 0; r < world; ++r) EXPECT_TRUE(errors[r].empty()) << "rank " << r << ": " << errors[r];
}

}  // namespace

TEST(Distributed, LoaderShardsSplitEveryGlobalBatch) {
  test::TempDir d;
  test::write_tiny_dataset(d / "data");
  const auto c = test::tiny_dataset_config(d / "data");
  auto ds = data::make_dataset(c, "train");
  std::vector<size_t> all(ds->size());
  std::iota(all.begin(), all.end(), 0);
  data::LoaderOptions o;
  o.batch_size = 4;
  o.workers = 0;
  o.seed = 7;
  o.augment.crop_size = 32;
  o.lut = data::identity_lut();
  data::Loader whole(*ds, all, o);
  o.shard_count = 2;
  o.shard_rank = 0;
  data::Loader first(*ds, all, o);
  o.shard_rank = 1;
  data::Loader second(*ds, all, o);
  for (auto* l : {&whole, &first, &second}) l->start_epoch(1);
  EXPECT_EQ(first.batches_per_epoch(), whole.batches_per_epoch());
  while (auto b = whole.next()) {
    auto x = first.next(), y = second.next();
    ASSERT_TRUE(x && y);
    ASSERT_EQ(x->size(), 2);
    ASSERT_EQ(y->size(), 2);
    // Rank r holds positions r, r + 2 of the global batch: same images, same augmentation.
    EXPECT_EQ(x->ids, (std::vector<std::string>{b->ids[0], b->ids[2]}));
    EXPECT_EQ(y->ids, (std::vector<std::string>{b->ids[1], b->ids[3]}));
    EXPECT_TRUE(torch::equal(x->images[1], b->images[2]));
    EXPECT_TRUE(torch::equal(y->labels[0], b->labels[1]));
  }
  o.shard_count = 3;
  o.shard_rank = 0;
  test::expect_error([&] { data::Loader bad(*ds, all, o); }, {"train.batch_size 4", "3 processes"});
}

TEST(Distributed, CollectivesAndGradientAveragingOverGloo) {
  with_group(2, [](distributed::ProcessGroup& g) {
    const double r = g.rank();
    std::vector<torch::Tensor> t{torch::full({3}, r + 1), torch::full({2, 2}, 10 * (r + 1))};
    g.all_reduce_sum(t);
    EXPECT_TRUE(torch::allclose(t[0], torch::full({3}, 3.0)));
    EXPECT_TRUE(torch::allclose(t[1], torch::full({2, 2}, 30.0)));
    // Broadcast: rank 0's values everywhere.
    std::vector<torch::Tensor> b{torch::full({4}, r)};
    distributed::broadcast_tensors(g, b);
    EXPECT_TRUE(torch::allclose(b[0], torch::zeros({4})));
    // Gradient averaging with buckets of at most 32 bytes (several buckets), a parameter without
    // a gradient left alone.
    std::vector<torch::Tensor> params;
    for (int i = 0; i < 4; ++i) {
      auto p = torch::zeros({i + 2}, torch::requires_grad());
      p.mutable_grad() = torch::arange(i + 2, torch::kFloat) * (r + 1) + i;
      params.push_back(p);
    }
    params.push_back(torch::zeros({3}, torch::requires_grad()));
    distributed::GradientAverager(g, 32).average(params);
    for (int i = 0; i < 4; ++i)  // mean over ranks of (r + 1) * k + i = 1.5 k + i
      EXPECT_TRUE(torch::allclose(params[i].grad(), torch::arange(i + 2, torch::kFloat) * 1.5 + i)) << i;
    EXPECT_FALSE(params[4].grad().defined());
    g.barrier();
  });
}

TEST(Distributed, EnvironmentFollowsTorchrun) {
  setenv("WORLD_SIZE", "4", 1);
  setenv("RANK", "2", 1);
  setenv("MASTER_ADDR", "10.0.0.5", 1);
  setenv("MASTER_PORT", "1234", 1);
  auto e = distributed::environment_from_env();
  EXPECT_EQ(e.world_size, 4);
  EXPECT_EQ(e.rank, 2);
  EXPECT_EQ(e.local_rank, 2);
  EXPECT_EQ(e.master_addr, "10.0.0.5");
  EXPECT_EQ(e.master_port, 1234);
  setenv("RANK", "4", 1);
  test::expect_error([] { distributed::environment_from_env(); }, {"RANK='4'", "[0, 3]"});
  for (const char* v : {"WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT"}) unsetenv(v);
  EXPECT_FALSE(distributed::environment_from_env().distributed());
}

// The backend follows the device as torch.distributed's default does; NCCL in a build without it
// is refused by name before any connection is tried.
TEST(Distributed, BackendFollowsTheDevice) {
  EXPECT_EQ(distributed::backend_for(torch::kCPU), distributed::Backend::Gloo);
  EXPECT_EQ(distributed::backend_for(torch::Device(torch::kCUDA, 0)),
            distributed::nccl_available() ? distributed::Backend::Nccl : distributed::Backend::Gloo);
  if (distributed::nccl_available()) GTEST_SKIP() << "built with NCCL: the refusal is not checked";
  distributed::Environment env;
  env.world_size = 2;
  test::expect_error(
      [&] { distributed::ProcessGroup::connect(env, std::chrono::seconds(1), distributed::Backend::Nccl); },
      {"NCCL backend needs cseg built against a CUDA LibTorch"});
}

// 2 processes (cseg launch) on the global batch of 4 end with the weights of 1 process on it, for
// a small UNet with BatchNorm frozen and with BatchNorm training, synchronised (train.sync_bn;
// without it the difference is about 0.09). Dropout is off: masks are drawn per process.
// (Fast-SCNN on these 32x32 images normalises 1x1 features of 4 images, where float rounding is
// amplified by up to 1/sqrt(eps) per layer: 2 processes and 1 differ by rounding, not by method.)
struct Variant {
  std::string name, model, overrides;
};
class TwoProcesses : public ::testing::TestWithParam<Variant> {};

TEST_P(TwoProcesses, MatchOneProcessOnTheCombinedBatch) {
  test::TempDir d;
  test::write_tiny_dataset(d / "data");
  const std::string extra = GetParam().model + "augment: {crop_size: 32, scale_min: 1.0, scale_max: 1.0}\n";
  auto config = [&](const std::string& out) {
    std::string yaml = test::tiny_config_yaml((d / "data").string(), out, 6);
    for (const std::string line : {"model: ", "augment: ", "methods: "}) {  // replaced below
      const auto at = yaml.find("\n" + line) + 1;
      yaml.erase(at, yaml.find('\n', at) + 1 - at);
    }
    return yaml + extra + "methods: [lwf]\n";
  };
  core::write_text_atomic((d / "one.yaml").string(), config((d / "one").string()));
  core::write_text_atomic((d / "two.yaml").string(), config((d / "two").string()));
  auto sh = [](const std::string& cmd) {
    FILE* p = popen((cmd + " 2>&1").c_str(), "r");
    std::string out;
    char buf[4096];
    while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
    return std::make_pair(WEXITSTATUS(pclose(p)), out);
  };
  auto [c1, o1] = sh(fmt::format("{} train -c {}{}", CSEG_BINARY, (d / "one.yaml").string(), GetParam().overrides));
  ASSERT_EQ(c1, 0) << o1;
  auto [c2, o2] = sh(
      fmt::format("{} launch --nproc 2 train -c {}{}", CSEG_BINARY, (d / "two.yaml").string(), GetParam().overrides));
  ASSERT_EQ(c2, 0) << o2;
  EXPECT_NE(o2.find("data-parallel: 2 processes"), std::string::npos) << o2;
  for (int step : {0, 1}) {
    const auto a = weights::read_weights((d / fmt::format("one/lwf/checkpoints/step{}.pt", step)).string());
    const auto b = weights::read_weights((d / fmt::format("two/lwf/checkpoints/step{}.pt", step)).string());
    ASSERT_EQ(a.size(), b.size());
    double worst = 0;
    std::string worst_key;
    size_t changed = 0;
    const auto init = weights::read_weights((d / "one/lwf/checkpoints/step0.pt").string());
    for (size_t i = 0; i < a.size(); ++i) {
      ASSERT_EQ(a[i].first, b[i].first);
      const double diff = (a[i].second.to(torch::kDouble) - b[i].second.to(torch::kDouble)).abs().max().item<double>();
      if (diff > worst) worst_key = a[i].first;
      worst = std::max(worst, diff);
      if (step == 1 && i < init.size() && init[i].first == a[i].first && !torch::equal(init[i].second, a[i].second))
        ++changed;
    }
    EXPECT_LT(worst, 1e-4) << "step " << step << ", " << worst_key;
    if (step == 1) EXPECT_GT(changed, 10u);  // step 1 trained: the comparison is not of untouched weights
  }
  // Only rank 0 wrote the run folder: one results file, and its numbers match.
  const auto r1 = nlohmann::json::parse(core::read_text((d / "one/lwf/results.json").string()));
  const auto r2 = nlohmann::json::parse(core::read_text((d / "two/lwf/results.json").string()));
  EXPECT_NEAR(r1["steps"][1]["test"]["miou"].get<double>(), r2["steps"][1]["test"]["miou"].get<double>(), 1e-3);
}

INSTANTIATE_TEST_SUITE_P(
    Distributed, TwoProcesses,
    ::testing::Values(
        Variant{"FrozenBatchNorm", "model: {name: unet, unet_channels: 8, norm: frozen_bn, dropout: 0}\n", ""},
        Variant{"SyncBatchNorm", "model: {name: unet, unet_channels: 8, dropout: 0}\n", " train.sync_bn=true"}),
    [](const auto& info) { return info.param.name; });

// Synchronised BatchNorm on 2 ranks gives what one BatchNorm gives on the combined batch: the
// outputs, the running statistics, and (after the usual averaging) the gradients.
// In both memory layouts (model.channels_last trains channels-last).
TEST(Distributed, SyncBatchNormMatchesOneBatchNormOnTheGlobalBatch) {
  for (const auto layout : {torch::MemoryFormat::Contiguous, torch::MemoryFormat::ChannelsLast}) {
    SCOPED_TRACE(layout == torch::MemoryFormat::ChannelsLast ? "channels-last" : "NCHW");
    torch::manual_seed(3);
    const auto x = (torch::randn({4, 3, 5, 5}) * 2 + 1).contiguous(layout), coef = torch::randn({4, 3, 5, 5});
    // One process: loss = mean over the two halves of each half's mean(y * coef).
    models::BatchNorm2d single(3);
    single->weight.data().uniform_(0.5, 1.5);
    single->bias.data().uniform_(-0.5, 0.5);
    auto xs = x.clone().requires_grad_(true);
    auto ys = single->forward(xs);
    ((ys.slice(0, 0, 2) * coef.slice(0, 0, 2)).mean() + (ys.slice(0, 2, 4) * coef.slice(0, 2, 4)).mean())
        .div(2)
        .backward();
    std::vector<torch::Tensor> ys_r(2), dx_r(2), dw_r(2), rm_r(2), rv_r(2);
    with_group(2, [&](distributed::ProcessGroup& g) {
      const int r = g.rank();
      models::BatchNorm2d bn(3);
      bn->weight.data().copy_(single->weight.detach());
      bn->bias.data().copy_(single->bias.detach());
      distributed::set_sync_batch_norm_group(&g);
      auto xr = x.slice(0, 2 * r, 2 * r + 2).clone().requires_grad_(true);
      auto y = bn->forward(xr);
      (y * coef.slice(0, 2 * r, 2 * r + 2)).mean().backward();
      distributed::set_sync_batch_norm_group(nullptr);
      ys_r[r] = y.detach(), dx_r[r] = xr.grad(), dw_r[r] = bn->weight.grad(), rm_r[r] = bn->running_mean.clone(),
      rv_r[r] = bn->running_var.clone();
    });
    for (int r = 0; r < 2; ++r) {
      EXPECT_TRUE(torch::allclose(ys_r[r], ys.detach().slice(0, 2 * r, 2 * r + 2), 1e-5, 1e-5)) << r;
      // Each rank back-propagates its own half's loss: twice its share of the averaged loss.
      EXPECT_TRUE(torch::allclose(dx_r[r], 2 * xs.grad().slice(0, 2 * r, 2 * r + 2), 1e-5, 1e-6)) << r;
      EXPECT_TRUE(torch::allclose(rm_r[r], single->running_mean, 1e-5, 1e-6)) << r;
      EXPECT_TRUE(torch::allclose(rv_r[r], single->running_var, 1e-5, 1e-6)) << r;
    }
    EXPECT_TRUE(torch::allclose((dw_r[0] + dw_r[1]) / 2, single->weight.grad(), 1e-5, 1e-6));
  }
}
