#include "commands.h"

#include <arpa/inet.h>
#include <fmt/ranges.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <thread>

#include "cseg/config/config.h"
#include "cseg/config/experiment.h"
#include "cseg/core/clock.h"
#include "cseg/core/device.h"
#include "cseg/core/error.h"
#include "cseg/core/files.h"
#include "cseg/core/log.h"
#include "cseg/core/runtime.h"
#include "cseg/data/datasets.h"
#include "cseg/data/fmnist/scenes.h"
#include "cseg/data/label_spaces.h"
#include "cseg/distributed/process_group.h"
#include "cseg/engine/checkpoint.h"
#include "cseg/engine/compare.h"
#include "cseg/engine/evaluator.h"
#include "cseg/engine/experiment_data.h"
#include "cseg/engine/predictor.h"
#include "cseg/engine/trainer.h"
#include "cseg/logging/progress.h"
#include "cseg/losses/options.h"
#include "cseg/methods/method.h"
#include "cseg/models/cost.h"
#include "cseg/models/inference.h"
#include "cseg/models/segmenter.h"
#include "cseg/pretrain/pretrain.h"
#include "cseg/report/html_report.h"
#include "cseg/scenarios/scenario.h"
#include "cseg/scenarios/task_table.h"
#include "cseg/weights/load.h"

namespace fs = std::filesystem;

namespace cseg::app {

namespace {

/// The env file of the command: --env, else $CSEG_ENV, else none (defaults).
std::string env_file(const ConfigArgs& a) {
  return a.env.empty() ? std::string(std::getenv("CSEG_ENV") ? std::getenv("CSEG_ENV") : "") : a.env;
}

/// The experiment of `a`. A `model.pretrain` file becomes `model.pretrained` (its encoder,
/// pretrained first when `pretrain_now` and not yet done) in backbone mode.
config::ExperimentConfig load_experiment(const ConfigArgs& a, config::ConfigTree* tree_out = nullptr,
                                         bool pretrain_now = true) {
  auto tree = config::load({a.config, a.overrides, env_file(a)});
  auto cfg = config::parse_experiment(tree);
  if (tree_out) *tree_out = tree;
  core::configure_runtime({cfg.threads, true});
  if (!cfg.model.pretrain.empty()) {
    cfg.model.pretrained =
        pretrain_now
            ? pretrain::ensure_encoder(cfg.model.pretrain, env_file(a))
            : pretrain::encoder_weights(config::parse_pretrain(config::load({cfg.model.pretrain, {}, env_file(a)})));
    cfg.model.pretrained_mode = "backbone";
  }
  return cfg;
}

/// The experiment of `a`; without a config file only the model section (from the overrides) is
/// read, and the class count defaults to Pascal VOC's 21.
config::ExperimentConfig load_model_experiment(const ConfigArgs& a, int& classes) {
  // These commands build the model from its options (weights come from --checkpoint/--weights),
  // so a model.pretrain that has not been trained yet is not trained for them.
  if (!a.config.empty()) return load_experiment(a, nullptr, /*pretrain_now=*/false);
  auto tree = config::load({"", a.overrides, a.env});
  config::ExperimentConfig cfg;
  cfg.model = config::parse_model_section(tree);
  if (classes <= 0) classes = 21;
  core::configure_runtime({0, true});  // every core, as a config with threads: 0
  return cfg;
}

std::string cache_dir(const config::ExperimentConfig& cfg) {
  return cfg.dataset.cache_dir.empty() ? (fs::path(cfg.output_dir).parent_path() / ".cache").string()
                                       : cfg.dataset.cache_dir;
}

int threads_of(const config::ExperimentConfig& cfg) {
  return cfg.threads > 0 ? cfg.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

std::string cell(const nlohmann::json& v) {
  return v.is_null() ? "   -  " : fmt::format("{:6.2f}", 100 * v.get<double>());
}

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

/// The label space of the config's dataset without opening it: the named datasets' own, or a
/// folder dataset's dataset.label_space; nullptr for a folder dataset without one.
const data::LabelSpace* dataset_label_space(const data::DatasetOptions& d) {
  return data::find_label_space(data::label_space_name(d));
}

int dataset_classes(const data::DatasetOptions& d) {
  if (d.name != "folder")
    if (const auto* space = dataset_label_space(d)) return int(space->class_names.size());
  CSEG_CHECK(d.num_classes > 0, "dataset '{}' has no known class count: set dataset.num_classes or pass --classes",
             d.name);
  return d.num_classes;
}

/// Builds the model of the config and loads its weights from `source`.
std::shared_ptr<models::Segmenter> model_from(const config::ExperimentConfig& cfg, const ModelSource& source,
                                              bool require_weights) {
  CSEG_CHECK(source.checkpoint.empty() || source.weights.empty(), "give --checkpoint or --weights, not both");
  CSEG_CHECK(!require_weights || !source.checkpoint.empty() || !source.weights.empty(),
             "give the model's weights: --checkpoint (a cseg step checkpoint) or --weights (a torch.save file)");
  if (!source.checkpoint.empty()) {
    auto state = engine::read_checkpoint_state(source.checkpoint);
    CSEG_CHECK(!state.heads.empty(), "checkpoint '{}' has no classifier heads", source.checkpoint);
    auto model = models::make_model(cfg.model, state.heads[0]);
    for (size_t k = 1; k < state.heads.size(); ++k) model->add_head(state.heads[k]);
    engine::load_checkpoint(source.checkpoint, *model, nullptr, nullptr);
    return model;
  }
  const int classes = source.classes > 0 ? source.classes : dataset_classes(cfg.dataset);
  auto model = models::make_model(cfg.model, classes);
  if (!source.weights.empty()) {
    auto report = weights::load_weights(*model, source.weights,
                                        {weights::parse_load_mode(source.weights_mode), true,
                                         weights::inplace_abn_scale_for(cfg.model.pretrained_norm_act)});
    log::info("loaded {} tensors from {}", report.loaded, source.weights);
  }
  return model;
}

std::string with_commas(int64_t v) {
  std::string s = std::to_string(v), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i > 0 && (s.size() - i) % 3 == 0 && s[i - 1] != '-') out += ',';
    out += s[i];
  }
  return out;
}

}  // namespace

int train(const ConfigArgs& args, const std::string& command_line) {
  config::ConfigTree tree(nullptr);
  auto cfg = load_experiment(args, &tree);
  // Data-parallel when started by `cseg launch` or torchrun (WORLD_SIZE > 1); rank 0 writes.
  const auto env = distributed::environment_from_env();
  std::unique_ptr<distributed::ProcessGroup> group;
  const bool primary = env.rank == 0;
  const fs::path out(cfg.output_dir);
  if (primary) {
    fs::create_directories(cfg.output_dir);
    core::write_text_atomic((out / "config.yaml").string(), tree.dump());
    core::write_text_atomic((out / "command.txt").string(), fmt::format("{}\ncseg {}\n", command_line, CSEG_VERSION));
    logging::setup_logging((out / "log.txt").string());
  } else {
    logging::setup_logging("");
    log::set_level(log::Level::warn);
  }
  if (env.distributed()) {
    // One GPU per process, as torchrun does: `device: cuda` becomes cuda:LOCAL_RANK.
    if (cfg.device == "cuda") cfg.device = fmt::format("cuda:{}", env.local_rank);
    core::make_current(core::parse_device(cfg.device));  // before NCCL picks a device for its barriers
    const auto backend = distributed::backend_for(core::parse_device(cfg.device));
    group = distributed::ProcessGroup::connect(env, std::chrono::seconds(1800), backend);
    log::info("data-parallel: {} processes ({}, rendezvous {}:{}), global batch {}, device {}", env.world_size,
              distributed::backend_name(backend), env.master_addr, env.master_port, cfg.train.batch_size, cfg.device);
  }
  core::make_current(core::parse_device(cfg.device));
  log::info("cseg {} | experiment '{}' | run folder {} | {} threads", CSEG_VERSION, cfg.name, cfg.output_dir,
            threads_of(cfg));
  // Build every method first: an unknown name fails before any training starts.
  std::vector<std::unique_ptr<methods::Method>> methods;
  // Options may be given for methods not run now (a shared base config), but not for unknown ones.
  const auto known = methods::method_names();
  for (const auto& [name, opts] : cfg.method_options)
    CSEG_CHECK(std::find(known.begin(), known.end(), name) != known.end(),
               "config key 'method_options.{}': unknown method '{}'; known: {}", name, name, fmt::join(known, ", "));
  for (const auto& m : cfg.methods) {
    auto it = cfg.method_options.find(m);
    methods.push_back(
        methods::make_method(m, it == cfg.method_options.end() ? std::map<std::string, std::string>{} : it->second));
  }
  auto data = engine::open_experiment_data(cfg, cache_dir(cfg), threads_of(cfg));
  nlohmann::json all{{"schema", "cseg.experiment/1"}, {"experiment", cfg.name}, {"methods", nlohmann::json::object()}};
  for (auto& method : methods) {
    engine::Trainer trainer(cfg, data, *method, (out / method->name()).string(), group.get());
    all["methods"][method->name()] = trainer.run();
    if (primary) core::write_text_atomic((out / "results.json").string(), all.dump(2) + "\n");
  }
  if (!primary) return 0;
  print_table(all["methods"]);
  cseg::report::write_report({out.string()}, (out / "report.html").string(), cfg.name);
  std::cout << "results: " << (out / "results.json").string() << "\n";
  std::cout << "report:  " << (out / "report.html").string() << "\n";
  return 0;
}

int pretrain(const ConfigArgs& args, const std::string& command_line) {
  auto tree = config::load({args.config, args.overrides, env_file(args)});
  const auto cfg = config::parse_pretrain(tree);
  core::configure_runtime({cfg.threads, true});
  const fs::path out(cfg.output_dir);
  fs::create_directories(out);
  core::write_text_atomic((out / "config.yaml").string(), tree.dump());
  core::write_text_atomic((out / "command.txt").string(), fmt::format("{}\ncseg {}\n", command_line, CSEG_VERSION));
  logging::setup_logging((out / "log.txt").string());
  const auto results = pretrain::run_pretraining(cfg);
  std::cout << fmt::format("held-out top-1: {:.2f} % ({} classes, chance {:.2f} %)\nencoder weights: {}\n",
                           100 * results.value("top1", 0.0), results["classes"].size(),
                           100 * results.value("chance", 0.0), results.value("weights", std::string()));
  return 0;
}

int eval(const ConfigArgs& args, const std::string& checkpoint, int step, const std::string& split,
         const std::string& method_flag) {
  auto cfg = load_experiment(args);
  // The method that trained the checkpoint: its prediction rule may differ from argmax (SSUL's
  // unknown class counts as background) and read its saved state.
  std::string method_name = method_flag;
  if (method_name.empty()) {
    const std::string folder = fs::absolute(checkpoint).parent_path().parent_path().filename().string();
    if (std::find(cfg.methods.begin(), cfg.methods.end(), folder) != cfg.methods.end())
      method_name = folder;
    else if (cfg.methods.size() == 1)
      method_name = cfg.methods.front();
    CSEG_CHECK(!method_name.empty(),
               "eval: checkpoint '{}' is not in a run folder of one of the experiment's methods "
               "[{}]: give --method",
               checkpoint, fmt::join(cfg.methods, ", "));
  }
  const auto opts = cfg.method_options.find(method_name);
  auto method = methods::make_method(
      method_name, opts == cfg.method_options.end() ? std::map<std::string, std::string>{} : opts->second);
  auto data = engine::open_experiment_data(cfg, cache_dir(cfg), threads_of(cfg));
  const auto& sc = *data.scenario;
  CSEG_CHECK(step >= 0 && step < sc.num_steps(), "--step {} is outside the scenario's steps 0..{}", step,
             sc.num_steps() - 1);
  // The heads come from the checkpoint: a method may have pre-allocated later steps' (DFT*).
  auto model = model_from(cfg, {checkpoint}, true);
  CSEG_CHECK(model->num_classes() >= sc.classes_after(step),
             "checkpoint '{}' has heads [{}] ({} classes); step {} of "
             "the scenario needs {} classes",
             checkpoint, fmt::join(model->head_sizes(), ","), model->num_classes(), step, sc.classes_after(step));
  engine::load_checkpoint(checkpoint, *model, nullptr, method.get());  // the method's state
  model->set_feature_taps(method->needs_features());
  model->to(core::parse_device(cfg.device));
  CSEG_CHECK(split == "test" || split == "val", "--split must be test or val (got '{}')", split);
  const auto& s = split == "test" ? data.test : data.val;
  const auto images = sc.eval_images(step, s.index);
  auto options = engine::eval_options(cfg);
  options.num_classes = sc.classes_after(step);
  options.predict = [&](const models::ModelOutput& out) { return method->predict(out); };
  auto cm = engine::evaluate(*model, *s.dataset, images, sc.eval_labels(step), options);
  auto scores = metrics::score(cm);
  nlohmann::json j{{"checkpoint", checkpoint},
                   {"method", method_name},
                   {"step", step},
                   {"split", split},
                   {"images", images.size()},
                   {"miou", scores.miou},
                   {"pixel_accuracy", scores.pixel_accuracy},
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
  if (data.domain())
    std::cout << fmt::format("{} | domain-incremental, {} environments, {} classes\n", d["dataset"].get<std::string>(),
                             data.num_steps(), data.class_names.size());
  else
    std::cout << fmt::format("{} | task {} | mode {} | protocol {}\n", d["dataset"].get<std::string>(),
                             cfg.scenario.task, d["mode"].get<std::string>(), d["protocol"].get<std::string>());
  for (const auto& s : d["steps"])
    std::cout << fmt::format(
        "step {:>2}: {:>5} train {:>5} val {:>5} test | {}\n", s["step"].get<int>(),
        s["num_images"]["train"].get<size_t>(), s["num_images"]["val"].get<size_t>(),
        s["num_images"]["test"].get<size_t>(),
        s.contains("environment")
            ? fmt::format("environment {}{}", s["environment"].get<std::string>(),
                          s["labelled"].get<bool>() ? "" : " (unlabelled)")
            : fmt::format("{}", fmt::join(s["class_names"].get<std::vector<std::string>>(), ", ")));
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
  g.scene.min_scale = a.min_scale;
  g.scene.max_scale = a.max_scale;
  g.scene.environment = data::fmnist::environment_preset(a.environment);
  g.frames_per_sequence = a.frames;
  CSEG_CHECK(a.size >= 32, "--size must be at least 32 (got {})", a.size);
  CSEG_CHECK(a.min_scale > 0 && a.min_scale <= a.max_scale, "--min-scale {} and --max-scale {}: need 0 < min <= max",
             a.min_scale, a.max_scale);
  if (data::fmnist::generate_scenes(g))
    std::cout << fmt::format("wrote {} train, {} val, {} test scenes ({}x{}, environment '{}'{}) to {}\n", a.train,
                             a.val, a.test, a.size, a.size, a.environment,
                             a.frames > 1 ? fmt::format(", sequences of {} frames", a.frames) : "", a.out);
  else
    std::cout << "scenes in " << a.out << " already match these options; nothing to do\n";
  return 0;
}

int predict(const ConfigArgs& args, const ModelSource& source, const PredictArgs& p) {
  auto cfg = load_experiment(args);
  auto model = model_from(cfg, source, true);
  model->to(core::parse_device(cfg.device));
  models::prepare_for_inference(*model);
  engine::PredictOptions o;
  o.input = p.input;
  o.out = p.out;
  o.batch_size = p.batch_size;
  o.save_probs = p.probs;
  o.save_logits = p.logits;
  o.alpha = p.alpha;
  o.mean = cfg.augment.mean;
  o.std = cfg.augment.std;
  o.detector = cfg.adaptation.detector;
  // Step labels follow the scenario's class order: write dataset labels (and their colours).
  const int n_classes = source.classes > 0 ? source.classes : dataset_classes(cfg.dataset);
  if (!source.checkpoint.empty()) {
    scenarios::Scenario sc(engine::experiment_steps(cfg, n_classes), scenarios::parse_mode(cfg.scenario.mode),
                           scenarios::parse_protocol(cfg.scenario.protocol), n_classes);
    for (int k = 0; k < model->num_classes(); ++k) o.dataset_labels.push_back(sc.dataset_label(k));
  }
  const auto* space = dataset_label_space(cfg.dataset);
  if (space) o.palette = space->palette;
  std::vector<std::string> names = cfg.dataset.class_names;
  if (names.empty() && space) names = space->class_names;
  nlohmann::json classes = nlohmann::json::array();
  for (int k = 0; k < model->num_classes(); ++k) {
    const int label = o.dataset_labels.empty() ? k : o.dataset_labels[k];
    const auto& c = o.palette[label];
    classes.push_back({{"channel", k},
                       {"label", label},
                       {"name", label < int(names.size()) ? names[label] : std::to_string(label)},
                       {"rgb", {c[0], c[1], c[2]}}});
  }
  fs::create_directories(p.out);
  core::write_text_atomic((fs::path(p.out) / "classes.json").string(), classes.dump(1) + "\n");
  const size_t n = engine::predict(*model, o);
  std::cout << fmt::format("predicted {} image(s) with {} ({} classes) -> {}\n", n, cfg.model.name,
                           model->num_classes(), p.out);
  return 0;
}

int model_info(const ConfigArgs& args, ModelInfoArgs m) {
  auto cfg = load_model_experiment(args, m.classes);
  CSEG_CHECK(m.height >= 32 && m.width >= 32, "--size must be at least 32x32 (got {}x{})", m.height, m.width);
  CSEG_CHECK(m.batch >= 1 && m.depth >= 1, "--batch and --depth must be >= 1");
  ModelSource source;
  source.classes = m.classes;
  auto model = model_from(cfg, source, false);
  auto cost = models::measure_cost(*model, m.height, m.width, m.batch, m.depth);
  if (m.json) {
    nlohmann::json j{{"model", cfg.model.name},
                     {"classes", model->num_classes()},
                     {"input", {m.batch, 3, m.height, m.width}},
                     {"params", cost.params},
                     {"trainable_params", cost.trainable_params},
                     {"macs", cost.macs},
                     {"modules", nlohmann::json::array()}};
    for (const auto& c : cost.modules)
      j["modules"].push_back({{"name", c.name}, {"params", c.params}, {"macs", c.macs}});
    std::cout << j.dump(1) << "\n";
    return 0;
  }
  std::cout << fmt::format("{} ({} classes) at {}x3x{}x{}: multiply-adds of convolutions and linear layers\n",
                           cfg.model.name, model->num_classes(), m.batch, m.height, m.width);
  std::cout << fmt::format("{:<48} {:>14} {:>12} {:>7}\n", "module", "params", "GMACs", "%MACs");
  for (const auto& c : cost.modules) {
    const int depth = int(std::count(c.name.begin(), c.name.end(), '.'));
    std::cout << fmt::format("{:<48} {:>14} {:>12.3f} {:>6.1f}%\n", std::string(2 * depth, ' ') + c.name,
                             with_commas(c.params), c.macs / 1e9, cost.macs ? 100.0 * c.macs / cost.macs : 0.0);
  }
  std::cout << fmt::format("{:<48} {:>14} {:>12.3f}\n", "total", with_commas(cost.params), cost.macs / 1e9);
  std::cout << fmt::format("trainable parameters: {}\n", with_commas(cost.trainable_params));
  return 0;
}

int suite(const std::string& file, const std::vector<std::string>& overrides_of_file,
          const std::vector<std::string>& only_methods, const std::string& binary) {
  auto tree = config::load({file, overrides_of_file, ""});
  auto root = tree.root();
  std::string name = fs::path(file).stem().string(), output_dir = "runs/" + name;
  std::vector<std::string> scenarios, methods, overrides;
  std::vector<int> seeds{0};
  int parallel = 1;
  bool share_step0 = true;
  root.read("name", name);
  root.read("parallel", parallel);
  root.read("share_step0", share_step0);
  root.read("output_dir", output_dir);
  root.read("scenarios", scenarios);
  root.read("methods", methods);
  root.read("seeds", seeds);
  root.read("overrides", overrides);
  root.finish();
  CSEG_CHECK(!scenarios.empty() && !methods.empty() && !seeds.empty(),
             "suite '{}': list scenarios (config files), methods and seeds", file);
  const auto known = methods::method_names();
  for (const auto& m : methods)
    CSEG_CHECK(std::find(known.begin(), known.end(), m) != known.end(), "suite '{}': unknown method '{}'", file, m);
  for (const auto& m : only_methods)
    CSEG_CHECK(std::find(methods.begin(), methods.end(), m) != methods.end(),
               "suite '{}': --methods '{}' is not a method of the grid ({}); list several as --methods a,b", file, m,
               fmt::join(methods, ", "));
  if (!only_methods.empty()) methods = only_methods;
  // Scenario paths are relative to the suite file.
  const fs::path base = fs::path(file).parent_path();
  fs::create_directories(fs::path(output_dir) / "logs");
  struct Job {
    std::string label, cmd, log;
  };
  std::vector<fs::path> configs;
  for (const auto& scenario : scenarios) {
    const fs::path cfg = fs::path(scenario).is_absolute() ? fs::path(scenario) : base / scenario;
    CSEG_CHECK(fs::exists(cfg), "suite '{}': scenario config '{}' does not exist", file, cfg.string());
    configs.push_back(cfg);
  }
  // A pretrained encoder (model.pretrain) is trained once, here, before the runs that share it.
  // The runs wait for it, so it trains on every core whatever the runs' own `threads`.
  for (const auto& cfg : configs) {
    ConfigArgs a{cfg.string(), "", overrides};
    const auto experiment = load_experiment(a, nullptr, false);
    if (experiment.model.pretrain.empty()) continue;
    core::configure_runtime({0, true});
    pretrain::ensure_encoder(experiment.model.pretrain, env_file(a));
  }
  // Job order: method, scenario, seed. Runs that start together then differ in their seed, so
  // none waits for another to train a step 0 they share (share_step0: scenarios with the same
  // first step, e.g. 5-5 and 5-1 overlap); the next scenario's runs find it made.
  std::vector<Job> jobs;
  for (const auto& m : methods)
    for (const auto& cfg : configs)
      for (int seed : seeds) {
        const std::string sname = cfg.stem().string();
        const auto run = fs::path(output_dir) / sname / fmt::format("{}_seed{}", m, seed);
        const auto log = fs::path(output_dir) / "logs" / fmt::format("{}.{}.seed{}.log", sname, m, seed);
        std::string cmd = fmt::format("'{}' train -c '{}' 'methods=[{}]' seed={} 'output_dir={}'", binary, cfg.string(),
                                      m, seed, run.string());
        if (share_step0)
          cmd += fmt::format(" 'train.shared_step0={}'", (fs::path(output_dir) / "shared_step0").string());
        for (const auto& o : overrides) cmd += " '" + o + "'";
        cmd += fmt::format(" > '{}' 2>&1", log.string());
        jobs.push_back({fmt::format("{} / {} / seed {}", sname, m, seed), cmd, log.string()});
      }
  // `parallel` runs at once (each a separate process; set threads in the configs accordingly).
  std::mutex mutex;
  size_t next = 0, done = 0;
  std::vector<std::string> failed;
  auto worker = [&] {
    while (true) {
      size_t i;
      {
        std::lock_guard<std::mutex> lock(mutex);
        if (next >= jobs.size()) return;
        i = next++;
      }
      const auto t0 = core::Clock::now();
      const int rc = std::system(jobs[i].cmd.c_str());
      const double secs = core::seconds_since(t0);
      std::lock_guard<std::mutex> lock(mutex);
      std::cout << fmt::format("[{}/{}] {} ({:.0f} s){}\n", ++done, jobs.size(), jobs[i].label, secs,
                               rc == 0 ? "" : " FAILED, see " + jobs[i].log)
                << std::flush;
      if (rc != 0) failed.push_back(jobs[i].label);
    }
  };
  std::vector<std::thread> pool;
  for (int w = 0; w < std::max(1, parallel); ++w) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  CSEG_CHECK(failed.empty(), "suite: {} run(s) failed: {}", failed.size(), fmt::join(failed, "; "));
  const int rc = compare({output_dir}, (fs::path(output_dir) / "table.md").string(),
                         (fs::path(output_dir) / "table.csv").string());
  const auto page = (fs::path(output_dir) / "report.html").string();
  cseg::report::write_report({output_dir}, page, "suite " + name);
  std::cout << "report: " << page << "\n";
  return rc;
}

namespace {
/// A TCP port that was free a moment ago on loopback (the kernel's pick for port 0).
int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  CSEG_CHECK(fd >= 0, "launch: cannot open a socket to find a free port");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
                  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0;
  close(fd);
  CSEG_CHECK(ok, "launch: cannot find a free port; pass --master-port");
  return ntohs(a.sin_port);
}
}  // namespace

int launch(int nproc, int port, const std::vector<std::string>& args, const std::string& binary) {
  CSEG_CHECK(nproc >= 1 && nproc <= 256, "launch: --nproc {} must be between 1 and 256", nproc);
  CSEG_CHECK(!args.empty(), "launch: give the command to run, e.g. cseg launch --nproc 2 train -c CONFIG");
  if (port <= 0) port = free_port();
  std::vector<pid_t> children;
  for (int rank = 0; rank < nproc; ++rank) {
    const pid_t pid = fork();
    CSEG_CHECK(pid >= 0, "launch: fork failed for rank {}", rank);
    if (pid == 0) {
      setenv("RANK", std::to_string(rank).c_str(), 1);
      setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
      setenv("WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      setenv("LOCAL_WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      setenv("MASTER_ADDR", "127.0.0.1", 1);
      setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      std::vector<char*> argv{const_cast<char*>(binary.c_str())};
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execv(binary.c_str(), argv.data());
      std::perror("launch: exec");
      _exit(127);
    }
    children.push_back(pid);
  }
  // The first process to fail ends the others (they would wait for it in a collective).
  int result = 0;
  size_t running = children.size();
  while (running > 0) {
    int status = 0;
    const pid_t pid = wait(&status);
    if (pid < 0) break;
    --running;
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (code != 0 && result == 0) {
      result = code;
      const auto rank = std::find(children.begin(), children.end(), pid) - children.begin();
      std::cerr << fmt::format("launch: rank {} exited with {}; stopping the others\n", rank, code);
      for (pid_t c : children)
        if (c != pid) kill(c, SIGTERM);
    }
  }
  return result;
}

int report(const std::vector<std::string>& paths, std::string out, std::string title) {
  if (out.empty()) {
    const fs::path first(paths.front());
    out = ((fs::is_directory(first) ? first : first.parent_path()) / "report.html").string();
  }
  if (title.empty()) title = fs::absolute(out).parent_path().filename().string();
  const size_t runs = cseg::report::write_report(paths, out, title);
  std::cout << fmt::format("report of {} run(s): {}{}\n", runs, out,
                           cseg::report::charts_built_in() ? "" : " (built without Chart.js: no charts)");
  return 0;
}

int compare(const std::vector<std::string>& paths, const std::string& markdown, const std::string& csv) {
  auto rows = engine::compare_runs(paths);
  CSEG_CHECK(!rows.empty(), "compare: no per-method results.json under {}", fmt::join(paths, ", "));
  const auto md = engine::comparison_markdown(rows);
  std::cout << md;
  if (!markdown.empty()) core::write_text_atomic(markdown, md);
  if (!csv.empty()) core::write_text_atomic(csv, engine::comparison_csv(rows));
  return 0;
}

std::pair<int, int> parse_size(const std::string& size) {
  const auto x = size.find('x');
  try {
    if (x != std::string::npos) return {std::stoi(size.substr(0, x)), std::stoi(size.substr(x + 1))};
  } catch (const std::exception&) {
  }
  fail("--size '{}' is not HEIGHTxWIDTH (e.g. 512x1024)", size);
}

int bench_model(const ConfigArgs& args, BenchModelArgs b) {
  auto cfg = load_model_experiment(args, b.classes);
  CSEG_CHECK(b.batch >= 1 && b.runs >= 1 && b.warmup >= 0, "--batch and --runs must be >= 1, --warmup >= 0");
  ModelSource source;
  source.classes = b.classes;
  auto model = model_from(cfg, source, false);
  const auto device = core::parse_device(cfg.device);
  model->to(device);
  std::vector<std::pair<int, int>> sizes;
  std::vector<models::ModelCost> costs;  // counted before folding, which leaves the multiply-adds as they are
  for (const auto& size : b.sizes) {
    const auto [h, w] = sizes.emplace_back(parse_size(size));
    CSEG_CHECK(h >= 32 && w >= 32, "--size {} is smaller than 32x32", size);
    costs.push_back(models::measure_cost(*model, h, w, 1, 1));
  }
  models::prepare_for_inference(*model);
  std::cout << fmt::format(
      "{} ({} classes), batch {}, {}, batch norm folded, channels-last weights, median of "
      "{} runs after {} warm-up\n",
      cfg.model.name, model->num_classes(), b.batch,
      device.is_cpu() ? fmt::format("CPU, {} threads", at::get_num_threads()) : device.str(), b.runs, b.warmup);
  std::cout << fmt::format("{:>11} {:>10} {:>10} {:>10} {:>12} {:>9}\n", "size", "median ms", "p90 ms", "min ms",
                           "images/s", "GMACs/img");
  for (size_t i = 0; i < b.sizes.size(); ++i) {
    const auto [h, w] = sizes[i];
    auto lat = models::measure_latency(*model, h, w, b.batch, b.warmup, b.runs);
    std::cout << fmt::format("{:>11} {:>10.2f} {:>10.2f} {:>10.2f} {:>12.1f} {:>9.3f}\n", b.sizes[i], lat.median_ms,
                             lat.p90_ms, lat.min_ms, lat.images_per_second, costs[i].macs / 1e9);
  }
  return 0;
}

int weights_list(const std::string& file) {
  std::string where;
  auto tensors = weights::read_weights(file, &where);
  int64_t total = 0;
  for (const auto& [k, t] : tensors) {
    std::cout << fmt::format("{:<64} {:<10} [{}]\n", k, std::string(c10::toString(t.scalar_type())),
                             fmt::join(t.sizes(), ", "));
    total += t.numel();
  }
  std::cout << fmt::format("{} tensors, {} values (state dict at {})\n", tensors.size(), with_commas(total), where);
  return 0;
}

int weights_check(const ConfigArgs& args, const ModelSource& source) {
  ModelSource empty;
  empty.classes = source.classes;
  auto cfg = load_model_experiment(args, empty.classes);
  auto model = model_from(cfg, empty, false);
  auto report = weights::load_weights(*model, source.weights,
                                      {weights::parse_load_mode(source.weights_mode), false,
                                       weights::inplace_abn_scale_for(cfg.model.pretrained_norm_act)});
  std::cout << report.to_string();
  return report.ok() ? 0 : 1;
}

int list(const std::string& what) {
  auto show = [&](const std::string& key, const std::vector<std::string>& items) {
    if (what.empty() || what == key) std::cout << key << ": " << fmt::format("{}", fmt::join(items, ", ")) << "\n";
  };
  show("datasets", data::dataset_names());
  show("models", models::model_names());
  show("methods", methods::method_names());
  show("modes", scenarios::mode_names());
  show("protocols", scenarios::protocol_names());
  show("losses", losses::loss_names());
  show("label_spaces", data::label_space_names());
  show("environments", data::fmnist::environment_names());
  if (what.empty() || what == "tasks") {
    std::map<std::string, std::vector<std::string>> by;
    for (const auto& t : scenarios::named_tasks()) by[t.dataset].push_back(t.name);
    for (const auto& [ds, names] : by)
      std::cout << "tasks (" << ds << "): " << fmt::format("{}", fmt::join(names, ", ")) << "\n";
    std::cout << "tasks (any dataset): offline, a-b (a classes, then blocks of b), a-b-c... (explicit block sizes)\n";
  }
  const std::vector<std::string> known{"",          "datasets", "models",       "methods", "modes",
                                       "protocols", "losses",   "environments", "tasks"};
  CSEG_CHECK(std::find(known.begin(), known.end(), what) != known.end(), "cseg list: unknown topic '{}'", what);
  return 0;
}

}  // namespace cseg::app
