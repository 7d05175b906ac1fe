// cseg's half of the side-by-side benchmarks against Python PyTorch (bench/pytorch_side.py is the
// other half, bench/side_by_side.py runs both and writes the table). One workload per process, so
// each process's memory is its own; the result is one JSON line on stdout.
//
//   bench_side_by_side infer model=fast_scnn size=1024x2048 [classes=19] [runs=10] [warmup=3]
//                            [batch=1] [fold_bn=1] [channels_last=1] [taps=0] [profile=TRACE.json]
//   bench_side_by_side train model=deeplabv3 size=256 batch=4 [iters=5] [warmup=2]
//                            [train_channels_last=0] [taps=0]
//   bench_side_by_side train_files data_root=DIR size=256 batch=8 [iters=30] [warmup=5] [workers=0]
//   common: threads=2 (intra-op threads)  tune_malloc=1 (cseg's start-up default)
//           device=cpu|cuda  precision=fp32|bf16|fp16 (autocast; fp16 needs cuda and trains with
//           cseg's loss scaler)  backbone=resnet50|resnet101 (deeplabv3)
// On a GPU each timed run ends with a device synchronisation (scripts/gpu_check.sh runs these).
// The defaults are cseg's own: for inference batch norm folded, no feature taps, channels-last
// weights; training in NCHW and float32 (model.channels_last, train.precision), without the
// feature taps that only some methods read (fine-tuning keeps none).
//
// Models: fast_scnn (19 classes, no aux head) and deeplabv3 (ResNet-50 or -101, output stride 8,
// 21 classes: torchvision's deeplabv3_resnet50 / deeplabv3_resnet101). Training: SGD (lr 0.01, momentum 0.9,
// weight decay 1e-4) on cross-entropy, as the Python side does.
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/cuda.h>

#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>

#include "common.h"
#include "cseg/core/device.h"
#include "cseg/core/grad_scaler.h"
#include "cseg/core/precision.h"
#include "cseg/core/runtime.h"
#include "cseg/engine/trainer.h"
#include "cseg/losses/losses.h"
#include "cseg/models/inference.h"
#include "cseg/models/segmenter.h"

using namespace cseg;
using Clock = std::chrono::steady_clock;

namespace {

using bench::Args;

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

std::pair<int64_t, int64_t> parse_size(const std::string& s) {
  const auto x = s.find('x');
  if (x == std::string::npos) return {std::stoll(s), std::stoll(s)};
  return {std::stoll(s.substr(0, x)), std::stoll(s.substr(x + 1))};
}

std::shared_ptr<models::Segmenter> make(const std::string& name, int classes, const std::string& backbone) {
  models::ModelOptions mc;
  mc.name = name;
  if (name == "deeplabv3") {
    mc.backbone = backbone;
    mc.output_stride = 8;
  } else if (name != "fast_scnn") {
    throw std::runtime_error("model='" + name + "': expected fast_scnn or deeplabv3");
  }
  return models::make_model(mc, classes);
}

int64_t count_params(models::Segmenter& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

/// Waits for the GPU's queued work, so a timed run ends when its kernels have (no-op on the CPU).
void sync(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

nlohmann::json infer(Args& a) {
  const auto [h, w] = parse_size(a["size"]);
  const torch::Device device = core::parse_device(a["device"]);
  const int batch = std::stoi(a["batch"]);
  auto model = make(a["model"], std::stoi(a["classes"]), a["backbone"]);
  const int64_t params = count_params(*model);
  model->eval();
  int folded = 0;
  if (a["fold_bn"] == "1") folded = models::fold_batch_norm(*model);
  model->to(device);
  // Channels-last weights, NCHW input, as `cseg predict` runs it (oneDNN then computes in NHWC).
  if (a["channels_last"] == "1") models::to_channels_last(*model);
  model->set_feature_taps(a["taps"] == "1");  // predict keeps no intermediate maps
  torch::NoGradGuard no_grad;
  auto x = torch::randn({batch, 3, h, w}, torch::TensorOptions().device(device));
  const auto forward = [&] {
    core::AutocastScope autocast(a["precision"], device.is_cuda());
    auto logits = model->forward(x).logits;
    sync(device);
    return logits;
  };
  for (int i = 0; i < std::stoi(a["warmup"]); ++i) forward();
  std::vector<double> ms;
  for (int i = 0; i < std::stoi(a["runs"]); ++i) {
    auto t0 = Clock::now();
    forward();
    ms.push_back(ms_since(t0));
  }
  if (!a["profile"].empty()) {  // one more forward, traced op by op (Chrome trace format)
    torch::autograd::profiler::RecordProfile trace(a["profile"]);
    forward();
  }
  return {{"median_ms", median(ms)},
          {"images_per_second", 1000.0 * batch / median(ms)},
          {"all_ms", ms},
          {"params", params},
          {"folded_norms", folded},
          {"device", device.str()},
          {"precision", a["precision"]}};
}

struct TrainStep {
  std::shared_ptr<models::Segmenter> model;
  std::unique_ptr<torch::optim::SGD> opt;
  std::string precision = "fp32";
  torch::Device device = torch::kCPU;
  core::GradScaler scaler;  // fp16 only: losses scaled, overflowing steps skipped, as cseg train
  TrainStep(const std::string& name, int classes, bool taps, const std::string& backbone = "resnet50",
            torch::Device on = torch::kCPU)
      : model(make(name, classes, backbone)), device(on) {
    model->to(device);
    model->train();
    model->set_feature_taps(taps);  // cseg train keeps taps only for methods that read them
    opt = std::make_unique<torch::optim::SGD>(model->parameters(),
                                              torch::optim::SGDOptions(0.01).momentum(0.9).weight_decay(1e-4));
  }
  void operator()(const torch::Tensor& x, const torch::Tensor& y) {
    torch::Tensor loss;
    {
      core::AutocastScope autocast(precision, device.is_cuda());  // the forward pass and the loss; not backward
      loss = losses::cross_entropy(model->forward(x).logits.to(torch::kFloat), y);
    }
    if (precision == "fp16") {
      scaler.scale(loss).backward();
      const bool finite = scaler.unscale(model->parameters());
      if (finite) opt->step();
      scaler.update(finite);
    } else {
      loss.backward();
      opt->step();
    }
    engine::release_gradients(*opt);  // as cseg train does: the next forward runs without them
    sync(device);
  }
};

nlohmann::json train(Args& a) {
  const auto [h, w] = parse_size(a["size"]);
  const int batch = std::stoi(a["batch"]), classes = std::stoi(a["classes"]);
  const torch::Device device = core::parse_device(a["device"]);
  TrainStep step(a["model"], classes, a["taps"] == "1", a["backbone"], device);
  step.precision = a["precision"];
  if (a["train_channels_last"] == "1") models::to_channels_last(*step.model);
  auto x = torch::randn({batch, 3, h, w}, torch::TensorOptions().device(device));
  auto y = torch::randint(0, classes, {batch, h, w}, torch::TensorOptions().dtype(torch::kInt64).device(device));
  for (int i = 0; i < std::stoi(a["warmup"]); ++i) step(x, y);
  std::vector<double> ms;
  for (int i = 0; i < std::stoi(a["iters"]); ++i) {
    auto t0 = Clock::now();
    step(x, y);
    ms.push_back(ms_since(t0));
  }
  return {{"images_per_second", 1000.0 * batch / median(ms)},
          {"all_ms", ms},
          {"params", count_params(*step.model)},
          {"device", device.str()},
          {"precision", step.precision},
          {"skipped_steps", step.scaler.skipped()}};
}

/// Fast-SCNN trained from the JPEG/PNG files of a VOC-layout folder through cseg's loader (decode,
/// random scale, pad, crop, flip, normalise, collate), as `cseg train` runs it. Throughput is over
/// the whole timed loop, loading included.
nlohmann::json train_files(Args& a) {
  const int size = std::stoi(a["size"]), batch = std::stoi(a["batch"]), iters = std::stoi(a["iters"]);
  data::AugmentOptions augment;  // cseg's defaults: scale 0.5-2, flip, ImageNet normalisation
  augment.crop_size = size;
  auto files = bench::train_loader(a["data_root"], augment, batch, std::stoi(a["workers"]));
  auto& loader = *files.loader;
  TrainStep step("fast_scnn", std::stoi(a["classes"]), a["taps"] == "1");
  if (a["train_channels_last"] == "1") models::to_channels_last(*step.model);
  int done = 0, epoch = 0;
  auto run = [&](int n) {
    while (done < n) {
      loader.start_epoch(epoch++);
      while (done < n) {
        auto b = loader.next();
        if (!b) break;
        step(b->images, b->labels);
        ++done;
      }
    }
  };
  run(std::stoi(a["warmup"]));
  done = 0;
  auto t0 = Clock::now();
  run(iters);
  return {{"images_per_second", 1000.0 * iters * batch / ms_since(t0)}, {"params", count_params(*step.model)}};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: bench_side_by_side infer|train|train_files key=value...\n";
    return 2;
  }
  const std::string workload = argv[1];
  Args a{{"model", "fast_scnn"},
         {"size", "512x1024"},
         {"classes", "19"},
         {"runs", "10"},
         {"warmup", "3"},
         {"fold_bn", "1"},
         {"channels_last", "1"},
         {"batch", "8"},
         {"iters", "10"},
         {"threads", "2"},
         {"tune_malloc", "1"},
         {"data_root", ""},
         {"workers", "0"},
         {"profile", ""},
         {"taps", "0"},
         {"precision", "fp32"},
         {"train_channels_last", "0"},
         {"device", "cpu"},
         {"backbone", "resnet50"}};
  if (!bench::parse_args(argc, argv, 2, a)) return 2;
  try {
    core::configure_runtime({std::stoi(a["threads"]), a["tune_malloc"] == "1"});
    torch::manual_seed(0);
    nlohmann::json r;
    if (workload == "infer")
      r = infer(a);
    else if (workload == "train")
      r = train(a);
    else if (workload == "train_files")
      r = train_files(a);
    else
      throw std::runtime_error("unknown workload '" + workload + "' (infer, train, train_files)");
    r["impl"] = "cseg";
    r["workload"] = workload;
    r["threads"] = at::get_num_threads();
    r["peak_rss_mb"] = core::peak_rss_mb();
    std::cout << r.dump() << std::endl;
  } catch (const std::exception& e) {
    std::cerr << "bench_side_by_side: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
