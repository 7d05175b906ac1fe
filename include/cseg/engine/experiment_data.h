#pragma once
/// Opens what an experiment trains and evaluates on: the dataset splits, their class-presence
/// indices and the scenario. Shared by `cseg train`, `cseg eval` and `cseg scenario`.
#include <array>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cseg/config/experiment.h"
#include "cseg/data/class_index.h"
#include "cseg/data/dataset.h"
#include "cseg/data/image_io.h"
#include "cseg/scenarios/scenario.h"

namespace cseg::engine {

struct SplitData {
  std::shared_ptr<data::Dataset> dataset;
  std::vector<data::LabelSet> index;
};

/// A domain-incremental step: one environment's data.
struct EnvironmentData {
  std::string name;
  bool labelled = true;
  SplitData train, val, test;
  /// The training frames with their masks, even when the environment is unlabelled: read only
  /// by joint training, the all-labels reference (for a labelled environment, train.dataset).
  std::shared_ptr<const data::Dataset> train_with_masks;
};

struct ExperimentData {
  /// Class-incremental: the dataset's splits. Domain-incremental: the first environment's.
  SplitData train, val, test;
  /// Domain-incremental only, one per step; the scenario is then one step with every class.
  std::vector<EnvironmentData> environments;
  std::unique_ptr<scenarios::Scenario> scenario;
  std::vector<std::string> class_names;  ///< in step-label order (background first)
  data::Palette palette;                 ///< colour per step label (255: the dataset's ignore colour)

  bool domain() const { return !environments.empty(); }
  int num_steps() const { return domain() ? int(environments.size()) : scenario->num_steps(); }
  /// The scenario step whose classes and label maps apply at step k (0 for every environment).
  int scenario_step(int k) const { return domain() ? 0 : k; }
  const SplitData& train_split(int k) const { return domain() ? environments.at(k).train : train; }
  const SplitData& val_split(int k) const { return domain() ? environments.at(k).val : val; }
  const SplitData& test_split(int k) const { return domain() ? environments.at(k).test : test; }
  bool labelled(int k) const { return domain() ? environments.at(k).labelled : true; }
};

/// What step k trains on, before a method's or an adaptation's changes.
struct StepTrainData {
  std::shared_ptr<const data::Dataset> dataset;
  std::vector<size_t> images;      ///< indices into dataset
  std::array<uint8_t, 256> lut{};  ///< dataset labels -> step labels, as the loader applies them
  bool labelled = true;            ///< false: an unlabelled environment (its masks are all 255)
  std::string description;         ///< for the log: the step's new classes, or its environment
};

/// Step k's training data. Class-incremental: the scenario's images of the step with the
/// protocol's labels, or with `cumulative` (joint training) every image and label seen so far.
/// Domain-incremental: every frame of the environment (an unlabelled one's frames are not chosen
/// by the classes in their masks: that would read labels; its labels pass unchanged), or with
/// `cumulative` every frame of the environments so far with their masks (joint training, the
/// all-labels reference, reads the masks of unlabelled environments too).
StepTrainData step_train_data(const ExperimentData& data, int k, bool cumulative);

/// `cache_dir` holds the class-presence indices (empty: no cache).
ExperimentData open_experiment_data(const config::ExperimentConfig& cfg, const std::string& cache_dir, int threads);

/// The steps of `cfg.scenario` on a dataset with `num_classes` labels (named task, generic spec,
/// explicit steps, custom order).
scenarios::TaskSteps experiment_steps(const config::ExperimentConfig& cfg, int num_classes);

/// Per step: its classes (dataset labels, step labels, names), the train/val/test image ids and
/// the label maps, as `cseg scenario --json` prints and a run folder's scenario.json stores.
nlohmann::json describe_scenario(const ExperimentData& data, bool with_ids);

}  // namespace cseg::engine
