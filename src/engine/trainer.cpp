// The run: restores finished steps, trains the others one by one (trainer_step.cpp), evaluates
// each (trainer_results.cpp) and measures the final model's cost.
#include "cseg/engine/trainer.h"

#include <algorithm>
#include <filesystem>

#include "cseg/core/device.h"
#include "cseg/core/error.h"
#include "cseg/core/files.h"
#include "cseg/core/log.h"
#include "cseg/core/runtime.h"
#include "cseg/distributed/process_group.h"
#include "cseg/engine/checkpoint.h"
#include "cseg/engine/recorder.h"
#include "cseg/models/cost.h"
#include "cseg/weights/load.h"

namespace fs = std::filesystem;

namespace cseg::engine {

Trainer::Trainer(const config::ExperimentConfig& cfg, const ExperimentData& data, methods::Method& method,
                 std::string run_dir, distributed::ProcessGroup* group)
    : cfg_(cfg),
      device_(core::parse_device(cfg.device)),
      data_(data),
      method_(method),
      run_dir_(std::move(run_dir)),
      group_(group) {
  recorder_ = primary() ? make_run_recorder(run_dir_, method_.name(), data_.class_names) : std::make_unique<Recorder>();
}

Trainer::~Trainer() = default;

bool Trainer::primary() const { return !group_ || group_->rank() == 0; }

std::string Trainer::checkpoint(const std::string& name) const {
  return (fs::path(run_dir_) / "checkpoints" / name).string();
}

std::shared_ptr<models::Segmenter> Trainer::build_model(int last_step) const {
  auto model =
      build_model_for_step(cfg_, *data_.scenario, data_.scenario_step(last_step), method_.preallocates_heads());
  model->to(device_);
  return model;
}

EvalOptions Trainer::method_eval_options(int classes) {
  auto o = eval_options(cfg_);
  o.num_classes = classes;
  o.predict = [this](const models::ModelOutput& out) { return method_.predict(out); };
  return o;
}

nlohmann::json Trainer::class_colours() const {
  nlohmann::json colours = nlohmann::json::array();
  for (size_t l = 0; l < data_.class_names.size(); ++l)
    colours.push_back({data_.palette[l][0], data_.palette[l][1], data_.palette[l][2]});
  return colours;
}

nlohmann::json Trainer::run() {
  if (data_.domain()) {
    const auto ok = methods::domain_method_names();
    CSEG_CHECK(std::find(ok.begin(), ok.end(), method_.name()) != ok.end(),
               "method '{}' is built around new classes; domain scenarios take: {}", method_.name(),
               fmt::join(ok, ", "));
  }
  if (primary()) {
    fs::create_directories(fs::path(run_dir_) / "checkpoints");
    core::write_text_atomic((fs::path(run_dir_) / "scenario.json").string(),
                            describe_scenario(data_, true).dump(1) + "\n");
  }
  const int first = restore_results();
  summarize();  // the restored steps' summary, also when a rerun finds every step done
  start_model(first);
  if (data_.domain() && !results_.contains("initial_task_miou")) {
    // The model before any training, on every environment: the reference of forward transfer.
    nlohmann::json initial = nlohmann::json::array();
    for (const auto& e : evaluate_environments()) initial.push_back(e.scores.miou);
    results_["initial_task_miou"] = initial;
  }
  if (first < data_.num_steps()) results_.erase("cost");  // the model changes: measure again at the end
  for (int k = first; k < data_.num_steps(); ++k) {
    StepTiming timing = train_step(k);
    results_["steps"].push_back(evaluate_step(k, timing));
    if (primary()) recorder_->step_evaluated(k, results_["steps"].back(), prediction_grid(k));
    summarize();
    recorder_->results(results_);
  }
  if (!results_.contains("cost") && primary()) {
    measure_cost();
    recorder_->results(results_);
  }
  return results_;
}

int Trainer::restore_results() {
  results_ = {{"schema", "cseg.results/1"},
              {"experiment", cfg_.name},
              {"method", method_.name()},
              {"dataset", data_.train.dataset->info().name},
              {"task", cfg_.scenario.steps.empty() ? cfg_.scenario.task : "custom"},
              {"mode", cfg_.scenario.mode},
              {"protocol", cfg_.scenario.protocol},
              {"model", cfg_.model.name},
              {"seed", cfg_.seed},
              {"class_names", data_.class_names},
              {"class_colours", class_colours()},
              {"steps", nlohmann::json::array()}};
  if (data_.domain()) {
    results_["type"] = "domain";
    results_["environments"] = nlohmann::json::array();
    for (const auto& e : data_.environments)
      results_["environments"].push_back({{"name", e.name}, {"labelled", e.labelled}});
  }
  // Resume: keep the steps whose end-of-step checkpoint and results both exist.
  int first = cfg_.train.start_step;
  const fs::path results_path = fs::path(run_dir_) / "results.json";
  if (fs::exists(results_path)) {
    // A damaged results file is an error, never a silent retrain of every step: the steps it
    // lists are the run's record (move it away to retrain).
    auto old = nlohmann::json::parse(core::read_text(results_path.string()), nullptr, false);
    const auto damaged = [&](const std::string& why) {
      return Error(fmt::format("results file '{}' {}: restore it, or move it away to retrain this run's steps",
                               results_path.string(), why));
    };
    if (old.is_discarded()) throw damaged("is not valid JSON");
    if (!old.is_object() || !old.contains("steps") || !old["steps"].is_array()) throw damaged("has no 'steps' list");
    for (const auto& s : old["steps"]) {
      if (!s.is_object() || !s.contains("step") || !s["step"].is_number_integer())
        throw damaged("has a step without an integer 'step'");
      int k = s["step"].get<int>();
      if (k == first && fs::exists(checkpoint(fmt::format("step{}.pt", k)))) {
        results_["steps"].push_back(s);
        ++first;
      }
    }
    if (old.contains("cost")) results_["cost"] = old["cost"];
    if (old.contains("initial_task_miou")) results_["initial_task_miou"] = old["initial_task_miou"];
  }
  CSEG_CHECK(first <= data_.num_steps(), "train.start_step {} is past the scenario's {} steps", first,
             data_.num_steps());
  return first;
}

void Trainer::start_model(int first) {
  if (first > 0) {
    const bool resumed = first > cfg_.train.start_step;
    const std::string from = resumed ? checkpoint(fmt::format("step{}.pt", first - 1)) : cfg_.train.init_checkpoint;
    model_ = build_model(first - 1);
    load_checkpoint(from, *model_, nullptr, &method_);
    log::info("[{}] {} from {} (steps 0..{} done)", method_.name(), resumed ? "resuming" : "starting", from, first - 1);
    return;
  }
  core::seed_torch(core::mix_seed(cfg_.seed, 0xC0DE));
  model_ = build_model(0);
  if (cfg_.model.pretrained.empty()) return;
  auto report =
      weights::load_weights(*model_, cfg_.model.pretrained,
                            {weights::parse_load_mode(cfg_.model.pretrained_mode), cfg_.model.pretrained_strict,
                             weights::inplace_abn_scale_for(cfg_.model.pretrained_norm_act)});
  log::info("pretrained weights: {} tensors from {} ({} mode){}", report.loaded, cfg_.model.pretrained,
            cfg_.model.pretrained_mode, report.ok() ? "" : "; report:\n" + report.to_string());
}

void Trainer::measure_cost() {
  // Multiply-adds per image at the training crop and at the first test image's size, and
  // inference latency there (batch 1).
  const auto sample = data_.test.dataset->load(0);
  const int64_t th = sample.image.rows, tw = sample.image.cols, crop = cfg_.augment.crop_size;
  const auto c = models::measure_trained_model(*model_, crop, th, tw);
  results_["cost"] = {{"params", c.train.params},
                      {"trainable_params", c.train.trainable_params},
                      {"macs_train", c.train.macs},
                      {"train_size", {crop, crop}},
                      {"macs_test", c.test.macs},
                      {"test_size", {th, tw}},
                      {"latency_ms_median", c.latency.median_ms},
                      {"latency_ms_p90", c.latency.p90_ms},
                      {"latency_batch", 1},
                      {"threads", at::get_num_threads()}};
}

}  // namespace cseg::engine
