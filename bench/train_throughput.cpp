// Training throughput of Fast-SCNN: compute only (random tensors already in memory) against the
// real pipeline (JPEG/PNG files decoded, augmented and collated by cseg's loader), in one run, so
// the ratio shows whether data loading holds the model back.
//
//   ./build/bench_train_throughput [data_root=data/fmnist-scenes] [size=96] [batch=8] [iters=60]
//                                  [threads=0] [workers=0]
#include <chrono>
#include <iostream>

#include "common.h"
#include "cseg/core/runtime.h"
#include "cseg/losses/losses.h"
#include "cseg/models/fast_scnn.h"

using namespace cseg;
using Clock = std::chrono::steady_clock;

namespace {
double seconds(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct Step {
  std::shared_ptr<models::FastScnn> model =
      std::make_shared<models::FastScnn>(models::FastScnnOptions{{11}, false, 0.1});
  torch::optim::SGD opt{model->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9)};
  void operator()(const torch::Tensor& x, const torch::Tensor& y) {
    auto loss = losses::cross_entropy(model->forward(x).logits, y);
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
};
}  // namespace

int main(int argc, char** argv) {
  bench::Args a{{"data_root", "data/fmnist-scenes"},
                {"size", "96"},
                {"batch", "8"},
                {"iters", "60"},
                {"threads", "0"},
                {"workers", "0"}};
  if (!bench::parse_args(argc, argv, 1, a)) return 2;
  const int size = std::stoi(a["size"]), batch = std::stoi(a["batch"]), iters = std::stoi(a["iters"]);
  core::configure_runtime({std::stoi(a["threads"]), true});
  torch::manual_seed(0);

  // 1. Compute only.
  Step compute;
  compute.model->train();
  auto x = torch::randn({batch, 3, size, size});
  auto y = torch::randint(0, 11, {batch, size, size}, torch::kInt64);
  for (int i = 0; i < 5; ++i) compute(x, y);  // warm-up
  auto t0 = Clock::now();
  for (int i = 0; i < iters; ++i) compute(x, y);
  const double compute_ips = iters * batch / seconds(t0);

  // 2. The real pipeline: files -> loader threads -> model.
  data::AugmentOptions augment;
  augment.crop_size = size;
  augment.scale_min = 0.75;
  augment.scale_max = 1.5;
  auto files = bench::train_loader(a["data_root"], augment, batch, std::stoi(a["workers"]));
  auto& loader = *files.loader;
  Step pipeline;
  pipeline.model->train();
  int done = 0, epoch = 0;
  double wait = 0;
  auto run = [&](int n) {
    while (done < n) {
      loader.start_epoch(epoch++);
      while (done < n) {
        auto tw = Clock::now();
        auto b = loader.next();
        wait += seconds(tw);
        if (!b) break;
        pipeline(b->images, b->labels);
        ++done;
      }
    }
  };
  run(5);
  done = 0;
  wait = 0;
  t0 = Clock::now();
  run(iters);
  const double total = seconds(t0);
  const double pipeline_ips = iters * batch / total;
  std::cout << fmt::format("Fast-SCNN training, batch {} at {}x{}, {} threads, {} loader workers, {} iterations\n",
                           batch, size, size, at::get_num_threads(), a["workers"], iters)
            << fmt::format("  compute only (tensors in memory): {:7.1f} images/s\n", compute_ips)
            << fmt::format(
                   "  with loading from files:          {:7.1f} images/s  ({:.2f}x of compute only; "
                   "{:.1f}% of the time waiting for data)\n",
                   pipeline_ips, pipeline_ips / compute_ips, 100 * wait / total);
  return 0;
}
