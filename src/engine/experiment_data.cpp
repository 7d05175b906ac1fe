#include "cseg/engine/experiment_data.h"

#include <numeric>

#include "cseg/core/error.h"
#include "cseg/data/datasets.h"
#include "cseg/data/loader.h"
#include "cseg/scenarios/task_table.h"

namespace cseg::engine {

scenarios::TaskSteps experiment_steps(const config::ExperimentConfig& cfg, int num_classes) {
  scenarios::TaskSteps steps;
  if (!cfg.scenario.steps.empty()) {
    steps = cfg.scenario.steps;
    scenarios::validate_steps(steps, num_classes, "scenario.steps");
  } else {
    steps = scenarios::resolve_task(cfg.dataset.name, cfg.scenario.task, num_classes);
  }
  if (!cfg.scenario.order.empty()) steps = scenarios::apply_order(steps, cfg.scenario.order, num_classes);
  return steps;
}

ExperimentData open_experiment_data(const config::ExperimentConfig& cfg, const std::string& cache_dir, int threads) {
  ExperimentData d;
  auto open = [&](const config::DatasetConfig& dataset, const std::string& split) {
    SplitData s;
    s.dataset = data::make_dataset(dataset, split);
    s.index = data::build_class_index(*s.dataset, cache_dir, threads);
    return s;
  };
  if (cfg.scenario.type == "domain") {
    // Every environment in the dataset's layout under its own root (or its own scenes of the
    // dataset's root); one label space.
    for (const auto& env : cfg.scenario.environments) {
      auto dataset = cfg.dataset;
      if (!env.root.empty()) dataset.root = env.root;
      if (!env.scenes.empty()) dataset.scenes = env.scenes;
      // An unlabelled environment's training masks are never opened (they need not exist); its
      // val and test labels are what it is evaluated on.
      SplitData train;
      std::shared_ptr<const data::Dataset> with_masks;
      if (env.labelled) {
        train = open(dataset, dataset.train_split);
        with_masks = train.dataset;
      } else {
        with_masks = data::make_dataset(dataset, dataset.train_split);
        train.dataset = std::make_shared<data::UnlabelledDataset>(with_masks);
      }
      EnvironmentData e{env.name,
                        env.labelled,
                        std::move(train),
                        open(dataset, dataset.val_split),
                        open(dataset, dataset.test_split),
                        with_masks};
      if (!d.environments.empty())
        CSEG_CHECK(e.train.dataset->info().num_classes == d.environments.front().train.dataset->info().num_classes,
                   "environment '{}' has another label space than the first", env.name);
      d.environments.push_back(std::move(e));
    }
    d.train = d.environments.front().train;
    d.val = d.environments.front().val;
    d.test = d.environments.front().test;
  } else {
    d.train = open(cfg.dataset, cfg.dataset.train_split);
    d.val = open(cfg.dataset, cfg.dataset.val_split);
    d.test = open(cfg.dataset, cfg.dataset.test_split);
  }
  const auto& info = d.train.dataset->info();
  // A domain scenario has one class step: every class from the start, labels as in the dataset.
  d.scenario = std::make_unique<scenarios::Scenario>(
      d.domain() ? scenarios::resolve_task(info.name, "offline", info.num_classes)
                 : experiment_steps(cfg, info.num_classes),
      scenarios::parse_mode(cfg.scenario.mode), scenarios::parse_protocol(cfg.scenario.protocol), info.num_classes);
  // Names and colours follow the step labels (a custom class order moves them).
  const data::Palette dataset_palette = info.palette.size() == 256 ? info.palette : data::voc_palette();
  d.palette = dataset_palette;
  for (int l = 0; l < info.num_classes; ++l) {
    d.class_names.push_back(info.class_names.at(d.scenario->dataset_label(l)));
    d.palette[l] = dataset_palette[d.scenario->dataset_label(l)];
  }
  return d;
}

namespace {
nlohmann::json label_map_json(const scenarios::LabelMap& m, int num_classes) {
  nlohmann::json j = nlohmann::json::object();
  for (int v = 0; v < num_classes; ++v) j[std::to_string(v)] = m[v];
  j["255"] = m[255];
  return j;
}
nlohmann::json ids_json(const SplitData& s, const std::vector<size_t>& idx) {
  nlohmann::json j = nlohmann::json::array();
  for (size_t i : idx) j.push_back(s.dataset->id(i));
  return j;
}
}  // namespace

nlohmann::json describe_scenario(const ExperimentData& d, bool with_ids) {
  const auto& sc = *d.scenario;
  const int n = d.train.dataset->info().num_classes;
  nlohmann::json out;
  out["dataset"] = d.train.dataset->info().name;
  out["mode"] = scenarios::to_string(sc.mode());
  out["protocol"] = scenarios::to_string(sc.protocol());
  out["class_names"] = d.class_names;
  out["steps"] = nlohmann::json::array();
  if (d.domain()) {
    // Every step trains on one environment and is evaluated on all of them.
    for (int k = 0; k < d.num_steps(); ++k) {
      const auto& e = d.environments[k];
      nlohmann::json s{
          {"step", k},
          {"environment", e.name},
          {"labelled", e.labelled},
          {"num_images",
           {{"train", e.train.dataset->size()}, {"val", e.val.dataset->size()}, {"test", e.test.dataset->size()}}}};
      if (with_ids) {
        std::vector<size_t> all(e.train.dataset->size());
        for (size_t i = 0; i < all.size(); ++i) all[i] = i;
        s["train_ids"] = ids_json(e.train, all);
      }
      out["steps"].push_back(s);
    }
    out["type"] = "domain";
    return out;
  }
  for (int k = 0; k < sc.num_steps(); ++k) {
    nlohmann::json s;
    s["step"] = k;
    s["dataset_classes"] = sc.steps()[k];
    std::vector<int> labels;
    std::vector<std::string> names;
    for (int l = sc.first_label(k); l < sc.classes_after(k); ++l) {
      labels.push_back(l);
      names.push_back(d.class_names[l]);
    }
    s["step_labels"] = labels;
    s["class_names"] = names;
    auto train = sc.train_images(k, d.train.index);
    auto val = sc.eval_images(k, d.val.index);
    auto test = sc.eval_images(k, d.test.index);
    s["num_images"] = {{"train", train.size()}, {"val", val.size()}, {"test", test.size()}};
    if (with_ids) {
      s["train_ids"] = ids_json(d.train, train);
      s["val_ids"] = ids_json(d.val, val);
      s["test_ids"] = ids_json(d.test, test);
    }
    s["train_label_map"] = label_map_json(sc.train_labels(k), n);
    s["eval_label_map"] = label_map_json(sc.eval_labels(k), n);
    out["steps"].push_back(s);
  }
  return out;
}

StepTrainData step_train_data(const ExperimentData& data, int k, bool cumulative) {
  const auto& sc = *data.scenario;
  const auto& split = data.train_split(k);
  const int sk = data.scenario_step(k);
  StepTrainData d;
  d.dataset = split.dataset;
  d.labelled = data.labelled(k) || (cumulative && data.domain());
  d.lut = cumulative && !data.domain() ? sc.cumulative_train_labels(k) : sc.train_labels(sk);
  const auto every_image = [&d] {
    d.images.resize(d.dataset->size());
    std::iota(d.images.begin(), d.images.end(), size_t(0));
  };
  if (data.domain() && cumulative) {
    std::vector<std::shared_ptr<const data::Dataset>> parts;
    std::vector<std::string> names;
    for (int e = 0; e <= k; ++e) {
      parts.push_back(data.environments[e].train_with_masks);
      names.push_back(data.environments[e].name);
    }
    d.dataset = std::make_shared<data::ConcatDataset>(
        parts, fmt::format("the training frames of environments {}", fmt::join(names, ", ")));
    every_image();
  } else if (!d.labelled) {
    every_image();
    // The masks are all 255 (UnlabelledDataset): they pass unchanged (the protocol's table would
    // turn 255 into background under MiB's protocol).
    d.lut = data::identity_lut();
  } else {
    d.images = cumulative ? sc.cumulative_train_images(k, split.index) : sc.train_images(sk, split.index);
  }
  if (data.domain()) {
    const auto& env = data.environments[k].name;
    d.description = cumulative ? fmt::format("environments up to {}, all with their labels (joint reference)", env)
                               : fmt::format("environment {}{}", env, d.labelled ? "" : " (unlabelled)");
  } else {
    const auto& names = data.class_names;
    d.description = fmt::format(
        "classes {}", fmt::join(std::vector<std::string>(names.begin() + (k == 0 ? 0 : sc.classes_after(k - 1)),
                                                         names.begin() + sc.classes_after(k)),
                                ", "));
  }
  return d;
}

}  // namespace cseg::engine
