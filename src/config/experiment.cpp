#include "cseg/config/experiment.h"

#include <algorithm>
#include <filesystem>

#include "cseg/config/config.h"
#include "cseg/core/device.h"
#include "cseg/core/error.h"
#include "cseg/core/log.h"
#include "cseg/core/precision.h"
#include "cseg/data/datasets.h"
#include "cseg/data/label_spaces.h"
#include "cseg/scenarios/scenario.h"
#include "sections.h"

namespace fs = std::filesystem;

namespace cseg::config {

namespace {

void read_dataset(Section s, DatasetConfig& c) {
  s.read_choice("name", c.name, data::dataset_names());
  s.read("root", c.root);
  s.read("train_split", c.train_split);
  s.read("val_split", c.val_split);
  s.read("test_split", c.test_split);
  s.read("cache_dir", c.cache_dir);
  s.read("num_classes", c.num_classes);
  s.read("class_names", c.class_names);
  auto spaces = data::label_space_names();
  spaces.insert(spaces.begin(), "");
  s.read_choice("label_space", c.label_space, spaces);
  s.read("image_dir", c.image_dir);
  s.read("mask_dir", c.mask_dir);
  s.read("image_ext", c.image_ext);
  s.read("mask_ext", c.mask_ext);
  s.read("saliency_dir", c.saliency_dir);
  s.read("scenes", c.scenes);
  s.read("label_map", c.label_map);
  s.finish();
}

}  // namespace

void read_augment(Section s, AugmentConfig& c) {
  s.read("crop_size", c.crop_size);
  s.read("scale_min", c.scale_min);
  s.read("scale_max", c.scale_max);
  s.read("hflip", c.hflip);
  s.read("mean", c.mean);
  s.read("std", c.std);
  s.finish();
  CSEG_CHECK(c.crop_size > 0, "config key {}: must be > 0", s.where("crop_size"));
  CSEG_CHECK(c.scale_min > 0 && c.scale_min <= c.scale_max, "config key {}: need 0 < scale_min <= scale_max",
             s.where("scale_min"));
  CSEG_CHECK(c.mean.size() == 3 && c.std.size() == 3, "config key {}: mean and std need 3 values", s.where("mean"));
}

namespace {

/// PLOP's Cityscapes city tasks: 11-5 = cities 0..10, 11..15, 16..20; 11-1 = 0..10, then one
/// at a time; 1-1 = one city per step (docs/protocols.md), as environments of dataset.root.
std::vector<EnvironmentConfig> cityscapes_city_tasks(const std::string& task, const std::string& where) {
  const auto& cities = data::cityscapes_city_order();
  std::vector<std::pair<size_t, size_t>> ranges;  // [first, last] city ids per step
  if (task == "11-5")
    ranges = {{0, 10}, {11, 15}, {16, 20}};
  else if (task == "11-1") {
    ranges = {{0, 10}};
    for (size_t i = 11; i <= 20; ++i) ranges.push_back({i, i});
  } else if (task == "1-1") {
    for (size_t i = 0; i <= 20; ++i) ranges.push_back({i, i});
  } else {
    fail("config key {}: unknown city task '{}' (11-5, 11-1, 1-1)", where, task);
  }
  std::vector<EnvironmentConfig> envs;
  for (const auto& [a, b] : ranges) {
    EnvironmentConfig e;
    e.name = a == b ? cities[a] : fmt::format("cities_{}-{}", a, b);
    e.scenes.assign(cities.begin() + long(a), cities.begin() + long(b) + 1);
    envs.push_back(std::move(e));
  }
  return envs;
}

void read_scenario(Section s, ScenarioConfig& c) {
  s.read_choice("type", c.type, {"class", "domain"});
  std::string city_task;
  s.read("city_task", city_task);
  {
    Section envs = s.section("environments");
    for (const auto& name : envs.keys()) {
      Section e = envs.section(name);
      EnvironmentConfig env;
      env.name = name;
      e.read("root", env.root);
      e.read("labelled", env.labelled);
      e.read("scenes", env.scenes);
      e.finish();
      CSEG_CHECK(!env.root.empty() || !env.scenes.empty(),
                 "config key {}: each environment needs a root, or scenes of dataset.root", e.where("root"));
      c.environments.push_back(env);
    }
    envs.finish();
    if (c.type == "domain" && c.environments.empty() && !city_task.empty())
      c.environments = cityscapes_city_tasks(city_task, s.where("city_task"));
    if (c.type == "domain")
      CSEG_CHECK(!c.environments.empty(),
                 "config key {}: a domain scenario lists its environments (name: {{root: ...}}) or names a "
                 "scenario.city_task",
                 s.where("environments"));
    else
      CSEG_CHECK(c.environments.empty(), "config key {}: environments need scenario.type: domain",
                 s.where("environments"));
  }
  s.read("task", c.task);
  s.read_choice("mode", c.mode, scenarios::mode_names());
  s.read_choice("protocol", c.protocol, scenarios::protocol_names());
  s.read("order", c.order);
  s.read("steps", c.steps);
  s.finish();
}

}  // namespace

void read_model(Section s, ModelConfig& c) {
  s.read_choice("name", c.name, models::model_names());
  s.read("aux", c.aux);
  s.read("dropout", c.dropout);
  s.read_choice("norm", c.norm, {"bn", "frozen_bn", "bn_leaky"});
  s.read_choice("backbone", c.backbone, {"resnet18", "resnet34", "resnet50", "resnet101", "resnet152"});
  s.read("output_stride", c.output_stride);
  s.read("aspp_rates", c.aspp_rates);
  s.read_choice("layout", c.layout, {"torchvision", "mib"});
  s.read("mib_eval_pooling", c.mib_eval_pooling);
  s.read("unet_channels", c.unet_channels);
  s.read_choice("unet_upsampling", c.unet_upsampling, {"bilinear", "transposed"});
  s.read("pretrained", c.pretrained);
  s.read("pretrain", c.pretrain);
  s.read_choice("pretrained_mode", c.pretrained_mode, {"full", "backbone", "skip_classifier"});
  s.read("pretrained_strict", c.pretrained_strict);
  s.read_choice("pretrained_norm_act", c.pretrained_norm_act, {"iabn_sync", "iabn", "abn"});
  s.read("channels_last", c.channels_last);
  s.finish();
  CSEG_CHECK(c.layout == "torchvision" || c.name == "deeplabv3",
             "config key {}: layout mib is the MiB/PLOP/SDR codebases' DeepLabV3; it needs name deeplabv3, got {}",
             s.where("layout"), c.name);
  CSEG_CHECK(c.mib_eval_pooling >= 0, "config key {}: mib_eval_pooling must be >= 0 (0: pool the whole map), got {}",
             s.where("mib_eval_pooling"), c.mib_eval_pooling);
  CSEG_CHECK(c.output_stride == 8 || c.output_stride == 16, "config key {}: output_stride must be 8 or 16, got {}",
             s.where("output_stride"), c.output_stride);
  CSEG_CHECK(c.unet_channels >= 2 && c.unet_channels % 2 == 0,
             "config key {}: unet_channels must be an even number >= 2, got {}", s.where("unet_channels"),
             c.unet_channels);
  CSEG_CHECK(c.name == "fast_scnn" ? c.norm == "bn" : true, "config key {}: fast_scnn supports only norm bn, got {}",
             s.where("norm"), c.norm);
}

void read_optim(Section s, OptimConfig& c) {
  s.read("lr", c.lr);
  s.read("lr_next", c.lr_next);
  s.read("head_lr_mult", c.head_lr_mult);
  s.read("momentum", c.momentum);
  s.read("nesterov", c.nesterov);
  s.read("weight_decay", c.weight_decay);
  s.read_choice("schedule", c.schedule, {"poly", "constant"});
  s.read("power", c.power);
  s.read("warmup_iters", c.warmup_iters);
  s.finish();
  CSEG_CHECK(c.lr > 0, "config key {}: the learning rate must be > 0", s.where("lr"));
}

namespace {

void read_loss(Section s, LossConfig& c) {
  s.read_choice("name", c.name, losses::loss_names());
  s.read("class_weights", c.class_weights);
  s.read("focal_gamma", c.focal_gamma);
  s.read("ohem_keep", c.ohem_keep);
  s.read("aux_weight", c.aux_weight);
  s.finish();
  CSEG_CHECK(c.ohem_keep > 0 && c.ohem_keep <= 1, "config key {}: must be in (0, 1]", s.where("ohem_keep"));
}

void read_train(Section s, TrainConfig& c) {
  s.read("batch_size", c.batch_size);
  s.read("epochs", c.epochs);
  s.read("iterations", c.iterations);
  s.read("steps_per_class", c.steps_per_class);
  s.read("first_step_factor", c.first_step_factor);
  s.read("sync_bn", c.sync_bn);
  s.read_choice("precision", c.precision, core::precision_names());
  s.read("workers", c.workers);
  s.read("prefetch", c.prefetch);
  s.read("checkpoint_every", c.checkpoint_every);
  s.read("checkpoint_minutes", c.checkpoint_minutes);
  s.read("debug", c.debug);
  s.read("debug_iterations", c.debug_iterations);
  s.read("shared_step0", c.shared_step0);
  s.read_choice("nonfinite", c.nonfinite, {"stop", "skip"});
  s.read("start_step", c.start_step);
  s.read("init_checkpoint", c.init_checkpoint);
  s.read("log_every", c.log_every);
  s.finish();
  int budgets = (c.epochs > 0) + (c.iterations > 0) + (c.steps_per_class > 0);
  CSEG_CHECK(budgets == 1,
             "config section 'train': set exactly one of epochs, iterations, steps_per_class "
             "(got epochs={}, iterations={}, steps_per_class={})",
             c.epochs, c.iterations, c.steps_per_class);
  CSEG_CHECK(c.batch_size > 0, "config key {}: must be > 0", s.where("batch_size"));
  CSEG_CHECK(c.first_step_factor > 0, "config key {}: must be > 0", s.where("first_step_factor"));
  CSEG_CHECK(c.workers >= 0, "config key {}: must be >= 0", s.where("workers"));
  CSEG_CHECK(c.checkpoint_every >= 0, "config key {}: must be >= 0 (0: at epoch ends only)",
             s.where("checkpoint_every"));
  CSEG_CHECK(c.checkpoint_minutes >= 0, "config key {}: must be >= 0 (0: off)", s.where("checkpoint_minutes"));
  CSEG_CHECK(c.start_step == 0 || !c.init_checkpoint.empty(),
             "config key {}: starting at step {} needs train.init_checkpoint", s.where("start_step"), c.start_step);
}

void read_eval(Section s, EvalConfig& c) {
  s.read("batch_size", c.batch_size);
  s.read("val_every", c.val_every);
  s.read("use_best", c.use_best);
  s.finish();
}

}  // namespace

ModelConfig parse_model_section(const ConfigTree& tree) {
  ModelConfig c;
  read_model(tree.root().section("model"), c);
  return c;
}

namespace {
/// Keys set for a component this experiment does not use, each as "'key' (in FILE) is not used by
/// this experiment: why". Every
/// such key is valid somewhere, so `finish` accepts it; but a typo'd experiment (options for
/// `mib` while running `mbi`, a label map the loader ignores) would run as if it were absent.
std::vector<std::string> unused_component_keys(const ExperimentConfig& c, const ConfigTree& tree,
                                               const std::vector<std::string>& adaptation_keys) {
  std::vector<std::string> unused;
  const auto note = [&](const std::string& key, const std::string& why) {
    const std::string origin = tree.origin(key);
    unused.push_back(
        fmt::format("'{}' (in {}) is not used by this experiment: {}", key, origin.empty() ? "?" : origin, why));
  };
  for (const auto& [method, options] : c.method_options)
    if (!options.empty() && std::find(c.methods.begin(), c.methods.end(), method) == c.methods.end())
      note("method_options." + method,
           fmt::format("method '{}' is not in methods [{}]", method, fmt::join(c.methods, ", ")));
  if (!c.dataset.label_map.empty() && c.dataset.name != "folder")
    note("dataset.label_map", fmt::format("only the folder dataset maps labels; '{}' ignores it", c.dataset.name));
  if (c.dataset.saliency_dir != "auto" && !data::dataset_reads_saliency(c.dataset.name))
    note("dataset.saliency_dir", fmt::format("the '{}' dataset has no saliency maps", c.dataset.name));
  if (c.scenario.type != "domain" && !adaptation_keys.empty())
    note("adaptation." + adaptation_keys.front(),
         "adaptation settings apply to unlabelled environments of domain scenarios (scenario.type: domain)");
  return unused;
}
}  // namespace

ExperimentConfig parse_experiment(const ConfigTree& tree) {
  ExperimentConfig c;
  Section root = tree.root();
  // strict: true makes a key for a component not in use an error; by default it is a warning
  // (a suite's base file may hold options for methods that other runs of the suite use).
  bool strict = false;
  root.read("strict", strict);
  root.read("name", c.name);
  root.read("seed", c.seed);
  root.read("threads", c.threads);
  root.read("device", c.device);
  core::parse_device(c.device);
  root.read("output_dir", c.output_dir);
  root.read("methods", c.methods);
  {
    Section opts = root.section("method_options");
    for (const auto& method : opts.keys()) {
      Section m = opts.section(method);
      auto& out = c.method_options[method];
      for (const auto& key : m.keys()) m.read_joined(key, out[key]);
      m.finish();
    }
    opts.finish();
  }
  read_dataset(root.section("dataset"), c.dataset);
  read_augment(root.section("augment"), c.augment);
  read_scenario(root.section("scenario"), c.scenario);
  read_model(root.section("model"), c.model);
  read_optim(root.section("optim"), c.optim);
  read_loss(root.section("loss"), c.loss);
  read_train(root.section("train"), c.train);
  read_eval(root.section("eval"), c.eval);
  {
    Section a = root.section("adaptation");
    a.read_choice("pseudo_labels", c.adaptation.pseudo_labels, {"hard", "soft"});
    a.read("threshold", c.adaptation.threshold);
    a.read("temperature", c.adaptation.temperature);
    a.read("class_fraction", c.adaptation.class_fraction);
    a.read("teacher_flip", c.adaptation.teacher_flip);
    a.read("student_jitter", c.adaptation.student_jitter);
    a.read("temporal", c.adaptation.temporal);
    a.read("fixed_labels", c.adaptation.fixed_labels);
    a.read("student_scale", c.adaptation.student_scale);
    a.read("temporal_consistency", c.adaptation.temporal_consistency);
    a.read("depth_edges", c.adaptation.depth_edges);
    a.read("depth_edge_step", c.adaptation.depth_edge_step);
    a.read("score_pseudo_labels", c.adaptation.score_pseudo_labels);
    a.read("detect", c.adaptation.detect);
    a.read("detect_history", c.adaptation.detect_history);
    a.read_choice("detect_signal", c.adaptation.detect_signal, {"uncertainty", "features", "either"});
    a.read("detect_tap", c.adaptation.detect_tap);
    {
      Section d = a.section("detector");
      auto& o = c.adaptation.detector;
      d.read("window", o.window);
      d.read("min_history", o.min_history);
      d.read("sigmas", o.sigmas);
      d.read("min_rise", o.min_rise);
      d.read("patience", o.patience);
      d.finish();
      CSEG_CHECK(o.window >= 2, "config key {}: must be >= 2 (got {})", d.where("window"), o.window);
      CSEG_CHECK(o.min_history >= 2 && o.min_history <= o.window, "config key {}: must be in [2, window = {}] (got {})",
                 d.where("min_history"), o.window, o.min_history);
      CSEG_CHECK(o.patience >= 1 && o.patience <= o.window, "config key {}: must be in [1, window = {}] (got {})",
                 d.where("patience"), o.window, o.patience);
      CSEG_CHECK(o.sigmas >= 0, "config key {}: must be >= 0 (got {})", d.where("sigmas"), o.sigmas);
      CSEG_CHECK(o.min_rise >= 0, "config key {}: must be >= 0 (got {})", d.where("min_rise"), o.min_rise);
    }
    a.finish();
    CSEG_CHECK(c.adaptation.detect_history >= c.adaptation.detector.min_history,
               "config key {}: must be at least adaptation.detector.min_history = {} (got {}): the detector "
               "learns the known room from these frames",
               a.where("detect_history"), c.adaptation.detector.min_history, c.adaptation.detect_history);
    CSEG_CHECK(c.adaptation.threshold >= 0 && c.adaptation.threshold <= 1, "config key {}: must be in [0, 1]",
               a.where("threshold"));
    CSEG_CHECK(c.adaptation.temperature > 0, "config key {}: must be > 0", a.where("temperature"));
    CSEG_CHECK(!c.adaptation.temporal || c.adaptation.pseudo_labels == "hard",
               "config key {}: temporal pseudo-labels are hard ones (adaptation.pseudo_labels: hard)",
               a.where("temporal"));
    CSEG_CHECK(!c.adaptation.fixed_labels || c.adaptation.pseudo_labels == "hard",
               "config key {}: fixed pseudo-labels are hard ones (adaptation.pseudo_labels: hard)",
               a.where("fixed_labels"));
    CSEG_CHECK(c.adaptation.student_jitter >= 0 && c.adaptation.student_jitter < 1, "config key {}: must be in [0, 1)",
               a.where("student_jitter"));
    CSEG_CHECK(c.adaptation.student_scale >= 0 && c.adaptation.student_scale < 1, "config key {}: must be in [0, 1)",
               a.where("student_scale"));
    CSEG_CHECK(c.adaptation.temporal_consistency >= 0, "config key {}: a loss weight must be >= 0",
               a.where("temporal_consistency"));
    CSEG_CHECK(c.adaptation.depth_edges >= 0, "config key {}: a loss weight must be >= 0", a.where("depth_edges"));
    CSEG_CHECK(c.adaptation.depth_edge_step > 0, "config key {}: must be > 0 (a relative depth step such as 0.05)",
               a.where("depth_edge_step"));
    CSEG_CHECK(c.adaptation.class_fraction >= 0 && c.adaptation.class_fraction <= 1, "config key {}: must be in [0, 1]",
               a.where("class_fraction"));
  }
  root.finish();
  if (!c.model.pretrain.empty()) {
    CSEG_CHECK(c.model.pretrained.empty(),
               "config keys 'model.pretrain' and 'model.pretrained' exclude each other "
               "(one names a pretraining file, the other a weights file)");
    const std::string origin = tree.origin("model.pretrain");
    if (fs::path(c.model.pretrain).is_relative() && !origin.empty() && origin != "command line")
      c.model.pretrain = (fs::path(origin).parent_path() / c.model.pretrain).lexically_normal().string();
    CSEG_CHECK(fs::exists(c.model.pretrain),
               "config key 'model.pretrain' (in {}): pretraining file '{}' does not exist", origin, c.model.pretrain);
  }
  CSEG_CHECK(!c.dataset.root.empty() || c.scenario.type == "domain",
             "config key 'dataset.root': a dataset root is required");
  if (c.scenario.type == "domain")
    CSEG_CHECK(c.scenario.environments.front().labelled || !c.model.pretrained.empty() || !c.model.pretrain.empty(),
               "config key 'scenario.environments.{}.labelled': the first environment must be labelled "
               "(or model.pretrained given): an unlabelled step learns from the model before it",
               c.scenario.environments.front().name);
  CSEG_CHECK(!c.methods.empty(), "config key {}: list at least one method", root.where("methods"));
  CSEG_CHECK(c.train.precision != "fp16" || c.device.rfind("cuda", 0) == 0,
             "config key 'train.precision': fp16 (float16 autocast with loss scaling) needs device: cuda; "
             "on the CPU use bf16");

  const auto unused = unused_component_keys(c, tree, root.section("adaptation").keys());
  CSEG_CHECK(!strict || unused.empty(), "config key {} (strict: true)", unused.empty() ? "" : unused.front());
  for (const auto& u : unused) log::warn("config key {}", u);

  if (c.output_dir.empty()) c.output_dir = tree.env().at("output_root") + "/" + c.name;
  return c;
}

}  // namespace cseg::config
