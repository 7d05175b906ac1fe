#include "cseg/models/cost.h"

#include <torch/cuda.h>

#include <chrono>

#include "cseg/models/inference.h"
#include "cseg/models/layers.h"
#include "cseg/models/segmenter.h"

namespace cseg::models {

namespace {
thread_local CostProbe* active_probe = nullptr;

int depth_of(const std::string& path) { return path.empty() ? 0 : int(std::count(path.begin(), path.end(), '.')) + 1; }
}  // namespace

void report_macs(const torch::nn::Module* module, int64_t macs) {
  if (active_probe) active_probe->add(module, macs);
}

CostProbe::CostProbe() : previous_(active_probe) { active_probe = this; }
CostProbe::~CostProbe() { active_probe = previous_; }

ModelCost measure_cost(Segmenter& model, int64_t height, int64_t width, int64_t batch, int depth) {
  const bool was_training = model.is_training();
  model.eval();
  CostProbe probe;
  {
    torch::NoGradGuard no_grad;
    model.forward(torch::zeros({batch, 3, height, width}, torch::TensorOptions().device(device_of(model))));
  }
  model.train(was_training);

  ModelCost cost;
  for (const auto& p : model.parameters()) {
    cost.params += p.numel();
    if (p.requires_grad()) cost.trainable_params += p.numel();
  }
  std::map<std::string, size_t> index;  // path -> position in cost.modules
  for (const auto& item : model.named_modules("", /*include_self=*/false)) {
    if (depth_of(item.key()) > depth) continue;
    index[item.key()] = cost.modules.size();
    ModuleCost m;
    m.name = item.key();
    for (const auto& p : item.value()->parameters()) m.params += p.numel();
    cost.modules.push_back(m);
  }
  // Attribute each counted module's multiply-adds to its ancestors up to `depth`.
  for (const auto& item : model.named_modules("", false)) {
    auto it = probe.macs().find(item.value().get());
    if (it == probe.macs().end()) continue;
    cost.macs += it->second;
    std::string path = item.key();
    while (!path.empty()) {
      if (auto at = index.find(path); at != index.end()) cost.modules[at->second].macs += it->second;
      auto dot = path.rfind('.');
      path = dot == std::string::npos ? std::string() : path.substr(0, dot);
    }
  }
  return cost;
}

Latency measure_latency(Segmenter& model, int64_t height, int64_t width, int64_t batch, int warmup, int runs) {
  const bool was_training = model.is_training();
  model.eval();
  torch::NoGradGuard no_grad;
  auto x = torch::randn({batch, 3, height, width}).to(device_of(model));
  // A GPU runs asynchronously: a run is timed from an idle device until its work is done.
  auto wait = [&] {
    if (x.is_cuda()) torch::cuda::synchronize(x.device().index());
  };
  for (int i = 0; i < warmup; ++i) model.forward(x);
  wait();
  std::vector<double> ms;
  for (int i = 0; i < std::max(1, runs); ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    model.forward(x);
    wait();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  model.train(was_training);
  std::sort(ms.begin(), ms.end());
  Latency l;
  l.median_ms = ms[ms.size() / 2];
  l.p90_ms = ms[std::min(ms.size() - 1, size_t(double(ms.size()) * 0.9))];
  l.min_ms = ms.front();
  l.images_per_second = l.median_ms > 0 ? 1000.0 * double(batch) / l.median_ms : 0;
  return l;
}

TrainedModelCost measure_trained_model(const Segmenter& model, int64_t crop, int64_t test_height, int64_t test_width) {
  auto on_cpu = model.make_like();
  copy_state(*on_cpu, model);
  TrainedModelCost c;
  c.train = measure_cost(*on_cpu, crop, crop);
  c.test = measure_cost(*on_cpu, test_height, test_width);
  prepare_for_inference(*on_cpu);
  c.latency = measure_latency(*on_cpu, test_height, test_width, 1, 3, 10);
  return c;
}

}  // namespace cseg::models
