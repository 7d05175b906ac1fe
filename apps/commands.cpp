#include "commands.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <iostream>
#include <thread>

#include "cseg/config/config.h"
#include "cseg/config/experiment.h"
#include "cseg/core/error.h"
#include "cseg/core/files.h"
#include "cseg/core/runtime.h"
#include "cseg/data/datasets.h"
#include "cseg/data/fmnist/scenes.h"
#include "cseg/engine/checkpoint.h"
#include "cseg/engine/evaluator.h"
#include "cseg/engine/experiment_data.h"
#include "cseg/engine/trainer.h"
#include "cseg/logging/progress.h"
#include "cseg/methods/method.h"
#include "cseg/models/segmenter.h"
#include "cseg/scenarios/task_table.h"

namespace fs = std::filesystem;

namespace cseg::app {

namespace {

config::ExperimentConfig load_experiment(const ConfigArgs& a, config::ConfigTree* tree_out = nullptr) {
  auto tree = config::load({a.config, a.overrides, a.env.empty() ? std::string(std::getenv("CSEG_ENV") ? std::getenv("CSEG_ENV") : "") : a.env});
  auto cfg = config::parse_experiment(tree);
  if (tree_out) *tree_out = tree;
  core::configure_runtime({cfg.threads, true});
  return cfg;
}

std::string cache_dir(const config::ExperimentConfig& cfg) {
  return cfg.dataset.cache_dir.empty() ? (fs::path(cfg.output_dir).parent_path() / ".cache").string()
                                       : cfg.dataset.cache_dir;
}

int threads_of(const config::ExperimentConfig& cfg) {
  return cfg.threads > 0 ? cfg.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

std::string cell(const nlohmann::json& v) { return v.is_null() ? "   -  " : fmt::format("{:6.2f}", 100 * v.get<double>()); }

void print_table(const nlohmann::json& methods) {
  std::string header = "step |";
  std::string rule = "-----+";
  for (const auto& [name, r] : methods.items()) {
    header += fmt::format(" {:^22} |", name + " old/new/all");
    rule += std::string(24, '-') + "+";
  }
  std::cout << "\nmIoU (%) after each step, test set\n" << header << "\n" << rule << "\n";
  size_t steps = 0;
  for (const auto& [name, r] : methods.items()) steps = std::max(steps, r["steps"].size());
  for (size_t k = 0; k < steps; ++k) {
    std::string line = fmt::format("{:>4} |", k);
    for (const auto& [name, r] : methods.items()) {
      if (k < r["steps"].size()) {
        const auto& t = r["steps"][k]["test"];
        line += fmt::format(" {} {} {}   |", cell(t["miou_old"]), cell(t["miou_new"]), cell(t["miou"]));
      } else {
        line += std::string(24, ' ') + "|";
      }
    }
    std::cout << line << "\n";
  }
  std::cout << "(old = step-0 classes incl. background; new = classes added later; all = every class seen)\n";
}

}  // namespace

int train(const ConfigArgs& args, const std::string& command_line) {
  config::ConfigTree tree(nullptr);
  auto cfg = load_experiment(args, &tree);
  fs::create_directories(cfg.output_dir);
  const fs::path out(cfg.output_dir);
  core::write_text_atomic((out / "config.yaml").string(), tree.dump());
  core::write_text_atomic((out / "command.txt").string(),
                          fmt::format("{}\ncseg {}\n", command_line, CSEG_VERSION));
  logging::setup_logging((out / "log.txt").string());
  spdlog::info("cseg {} | experiment '{}' | run folder {} | {} threads", CSEG_VERSION, cfg.name, cfg.output_dir,
               threads_of(cfg));
  // Build every method first: an unknown name fails before any training starts.
  std::vector<std::unique_ptr<methods::Method>> methods;
  for (const auto& m : cfg.methods) methods.push_back(methods::make_method(m));
  auto data = engine::open_experiment_data(cfg, cache_dir(cfg), threads_of(cfg));
  nlohmann::json all{{"schema", "cseg.experiment/1"}, {"experiment", cfg.name}, {"methods", nlohmann::json::object()}};
  for (auto& method : methods) {
    engine::Trainer trainer(cfg, data, *method, (out / method->name()).string());
    all["methods"][method->name()] = trainer.run();
    core::write_text_atomic((out / "results.json").string(), all.dump(2) + "\n");
  }
  print_table(all["methods"]);
  std::cout << "results: " << (out / "results.json").string() << "\n";
  return 0;
}

int eval(const ConfigArgs& args, const std::string& checkpoint, int step, const std::string& split) {
  auto cfg = load_experiment(args);
  auto data = engine::open_experiment_data(cfg, cache_dir(cfg), threads_of(cfg));
  const auto& sc = *data.scenario;
  CSEG_CHECK(step >= 0 && step < sc.num_steps(), "--step {} is outside the scenario's steps 0..{}", step,
             sc.num_steps() - 1);
  auto model = engine::build_model_for_step(cfg, sc, step);
  engine::load_checkpoint(checkpoint, *model, nullptr, nullptr);
  CSEG_CHECK(split == "test" || split == "val", "--split must be test or val (got '{}')", split);
  const auto& s = split == "test" ? data.test : data.val;
  const auto images = sc.eval_images(step, s.index);
  auto cm = engine::evaluate(*model, *s.dataset, images, sc.eval_labels(step), engine::eval_options(cfg));
  auto scores = metrics::score(cm);
  nlohmann::json j{{"checkpoint", checkpoint}, {"step", step}, {"split", split}, {"images", images.size()},
                   {"miou", scores.miou}, {"pixel_accuracy", scores.pixel_accuracy},
                   {"miou_old", metrics::mean_iou(scores, 0, sc.classes_after(0)).value_or(-1)}};
  if (step > 0) j["miou_new"] = metrics::mean_iou(scores, sc.classes_after(0), sc.classes_after(step)).value_or(-1);
  nlohmann::json per_class = nlohmann::json::object();
  for (size_t c = 0; c < scores.iou.size(); ++c)
    per_class[data.class_names[c]] = scores.iou[c] ? nlohmann::json(*scores.iou[c]) : nlohmann::json();
  j["per_class_iou"] = per_class;
  std::cout << j.dump(2) << "\n";
  return 0;
}

int scenario(const ConfigArgs& args, bool json, bool ids) {
  auto cfg = load_experiment(args);
  auto data = engine::open_experiment_data(cfg, cache_dir(cfg), threads_of(cfg));
  auto d = engine::describe_scenario(data, ids || json);
  if (json) {
    std::cout << d.dump(1) << "\n";
    return 0;
  }
  std::cout << fmt::format("{} | task {} | mode {} | protocol {}\n", d["dataset"].get<std::string>(), cfg.scenario.task,
                           d["mode"].get<std::string>(), d["protocol"].get<std::string>());
  for (const auto& s : d["steps"])
    std::cout << fmt::format("step {:>2}: {:>5} train {:>5} val {:>5} test | {}\n", s["step"].get<int>(),
                             s["num_images"]["train"].get<size_t>(), s["num_images"]["val"].get<size_t>(),
                             s["num_images"]["test"].get<size_t>(),
                             fmt::join(s["class_names"].get<std::vector<std::string>>(), ", "));
  return 0;
}

int data_fmnist_scenes(const SceneArgs& a) {
  data::fmnist::GenerateOptions g;
  g.out_dir = a.out;
  g.fmnist_dir = a.fmnist_dir;
  g.seed = a.seed;
  g.train = a.train;
  g.val = a.val;
  g.test = a.test;
  g.threads = a.threads > 0 ? a.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  g.scene.width = g.scene.height = a.size;
  g.scene.min_items = a.min_items;
  g.scene.max_items = a.max_items;
  g.scene.environment = data::fmnist::environment_preset(a.environment);
  CSEG_CHECK(a.size >= 32, "--size must be at least 32 (got {})", a.size);
  if (data::fmnist::generate_scenes(g))
    std::cout << fmt::format("wrote {} train, {} val, {} test scenes ({}x{}, environment '{}') to {}\n", a.train,
                             a.val, a.test, a.size, a.size, a.environment, a.out);
  else
    std::cout << "scenes in " << a.out << " already match these options; nothing to do\n";
  return 0;
}

int list(const std::string& what) {
  auto show = [&](const std::string& key, const std::vector<std::string>& items) {
    if (what.empty() || what == key) std::cout << key << ": " << fmt::format("{}", fmt::join(items, ", ")) << "\n";
  };
  show("datasets", data::dataset_names());
  show("models", models::model_names());
  show("methods", methods::method_names());
  show("modes", {"overlap", "disjoint", "sequential"});
  show("protocols", {"mib", "sdr", "mibv2", "plop", "continuum", "cssegmentation", "ssul"});
  show("losses", {"ce", "focal", "dice", "soft_iou", "ohem"});
  show("environments", data::fmnist::environment_names());
  if (what.empty() || what == "tasks") {
    std::map<std::string, std::vector<std::string>> by;
    for (const auto& t : scenarios::named_tasks()) by[t.dataset].push_back(t.name);
    for (const auto& [ds, names] : by) std::cout << "tasks (" << ds << "): " << fmt::format("{}", fmt::join(names, ", ")) << "\n";
    std::cout << "tasks (any dataset): offline, a-b (a classes, then blocks of b), a-b-c... (explicit block sizes)\n";
  }
  const std::vector<std::string> known{"", "datasets", "models", "methods", "modes", "protocols", "losses", "environments", "tasks"};
  CSEG_CHECK(std::find(known.begin(), known.end(), what) != known.end(), "cseg list: unknown topic '{}'", what);
  return 0;
}

}  // namespace cseg::app
