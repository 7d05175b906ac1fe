// bench_continual_step: what one training iteration of a continual method costs against
// fine-tuning's, with the methods interleaved iteration by iteration in one process.
//
// Why not only whole `cseg train` runs (bench/side_by_side.py does those too): on the shared
// 2-core VM the machine's speed drifts by 20-40 % over tens of seconds, more than the methods
// differ, so runs a minute apart compare the machine with itself. Here every round trains one
// iteration of each method in turn on the same batch, and each method's median over the rounds
// is compared: the drift hits all of them alike.
//
// Each method gets what the trainer gives it at step 1 of `config` (bench/continual_step.yaml):
// the same step-0 weights, the teacher readied for inference (when the method asks for one), the
// step's new head, real augmented batches from the step's training images, its hooks
// (on_step_begin, and step 0's on_step_end first so replay has a filled buffer), readied by the
// trainer's own engine::ready_step_model, and each iteration is the trainer's
// engine::TrainIteration (before_forward, the teacher's forward without autograd, forward, task
// loss + the method's terms, backward, the update, gradients released, the loss read).
//
//   bench_continual_step [config=bench/continual_step.yaml] [methods=finetune,mib,plop,replay]
//                        [rounds=60] [warmup=5] [threads=2]
// Prints one JSON line: per method the median ms per iteration, images per iteration and the
// ratio of the median to fine-tuning's (the first method).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common.h"
#include "cseg/config/config.h"
#include "cseg/core/device.h"
#include "cseg/core/log.h"
#include "cseg/core/runtime.h"
#include "cseg/engine/experiment_data.h"
#include "cseg/engine/iteration.h"
#include "cseg/engine/optimizer.h"
#include "cseg/methods/method.h"
#include "cseg/scenarios/scenario.h"

using namespace cseg;
using Clock = std::chrono::steady_clock;

namespace {

/// The first `count` augmented batches of scenario step `step`'s training images (loaded once:
/// every method trains on the same ones).
std::vector<Batch> step_batches(const config::ExperimentConfig& cfg, const engine::ExperimentData& data, int step,
                                size_t count) {
  const auto& sc = *data.scenario;
  data::LoaderOptions lo;
  lo.batch_size = cfg.train.batch_size;
  lo.train = true;
  lo.seed = core::mix_seed(cfg.seed, 0xDA7A, step);
  lo.augment = cfg.augment;
  lo.lut = sc.train_labels(step);
  data::Loader loader(*data.train.dataset, sc.train_images(step, data.train.index), lo);
  std::vector<Batch> batches;
  for (int epoch = 0; batches.size() < count; ++epoch) {
    loader.start_epoch(epoch);
    while (auto b = loader.next()) {
      batches.push_back(std::move(*b));
      if (batches.size() == count) break;
    }
  }
  return batches;
}

/// One method at step 1, set up as the trainer sets it up.
struct Runner {
  std::unique_ptr<methods::Method> method;
  std::shared_ptr<models::Segmenter> model, teacher;
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  adaptation::StepAdaptation labelled;  // a labelled step: no adaptation
  std::unique_ptr<engine::TrainIteration> iteration;
  methods::StepContext ctx;
  std::vector<double> ms;
  int64_t images = 0;

  Runner(const std::string& name, const config::ExperimentConfig& cfg, const engine::ExperimentData& data,
         const std::vector<Batch>& step0, const std::vector<Batch>& step1) {
    const auto& sc = *data.scenario;
    method = methods::make_method(name);
    torch::manual_seed(cfg.seed);  // the same step-0 weights for every method
    model = engine::build_model_for_step(cfg, sc, 0);
    auto visit = [](const std::vector<Batch>& batches) {
      return [&batches](const std::function<void(const Batch&)>& fn) {
        for (const auto& b : batches) fn(b);
      };
    };
    methods::StepContext first;  // step 0's end: what replay keeps
    first.num_classes = sc.classes_after(0);
    first.model = model.get();
    first.scenario = &sc;
    first.config = &cfg;
    first.visit_train_data = visit(step0);
    method->on_step_begin(first);
    method->on_step_end(first);

    ctx.step = 1;
    ctx.num_old_classes = sc.classes_after(0);
    ctx.num_classes = sc.classes_after(1);
    ctx.first_new_label = ctx.num_old_classes;
    ctx.scenario = &sc;
    ctx.config = &cfg;
    ctx.total_iterations = 1 << 20;
    ctx.iterations_per_epoch = int64_t(step1.size());
    teacher = engine::ready_step_model(*model, ctx, method->needs_old_model(), method->needs_features(), cfg.model,
                                       core::parse_device(cfg.device));
    ctx.visit_train_data = visit(step1);
    method->on_step_begin(ctx);
    std::vector<double> base_lrs;
    optimizer = engine::make_step_optimizer(*model, cfg.optim, engine::step_learning_rate(cfg.optim, 1), base_lrs,
                                            method->parameters());
    iteration = std::make_unique<engine::TrainIteration>(cfg, *model, *method, labelled, *optimizer,
                                                         engine::TrainIteration::Options{});
    model->train();
  }

  /// One iteration on (a copy of) `source`; returns its wall time in ms.
  double iterate(const Batch& source) {
    const auto t0 = Clock::now();
    Batch batch = source;  // replay appends to it
    iteration->run(ctx, batch);
    ++ctx.iteration;
    images = batch.size();
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  }
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) try {
  bench::Args args{{"config", "bench/continual_step.yaml"},
                   {"methods", "finetune,mib,plop,replay"},
                   {"rounds", "60"},
                   {"warmup", "5"},
                   {"threads", "2"}};
  if (!bench::parse_args(argc, argv, 1, args)) return 2;
  log::set_level(log::Level::warn);
  core::RuntimeOptions runtime;
  runtime.threads = std::stoi(args["threads"]);
  core::configure_runtime(runtime);
  const auto cfg = config::parse_experiment(config::load({args["config"], {}, ""}));
  const auto data = engine::open_experiment_data(cfg, "", runtime.threads);
  const int rounds = std::stoi(args["rounds"]), warmup = std::stoi(args["warmup"]);
  const auto step0 = step_batches(cfg, data, 0, 16);
  const auto step1 = step_batches(cfg, data, 1, 16);

  std::vector<std::string> names;
  std::stringstream list(args["methods"]);
  for (std::string name; std::getline(list, name, ',');) names.push_back(name);
  std::vector<std::unique_ptr<Runner>> runners;
  for (const auto& name : names) runners.push_back(std::make_unique<Runner>(name, cfg, data, step0, step1));

  for (int r = 0; r < warmup + rounds; ++r)
    for (auto& runner : runners) {
      const double ms = runner->iterate(step1[size_t(r) % step1.size()]);
      if (r >= warmup) runner->ms.push_back(ms);
    }

  nlohmann::json out = nlohmann::json::object();
  const double reference = median(runners[0]->ms);
  for (const auto& runner : runners) {
    const double m = median(runner->ms);
    out[runner->method->name()] = {
        {"median_ms", m},
        {"images_per_iteration", runner->images},
        {"ratio", m / reference},
        {"ratio_per_image", (m / double(runner->images)) / (reference / double(runners[0]->images))}};
  }
  std::printf("%s\n", out.dump().c_str());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_continual_step: %s\n", e.what());
  return 1;
}
