#pragma once
/// A class-incremental scenario: task steps + mode (which images a step trains on) + label
/// protocol (how labels are mapped at train and test time), per docs/protocols.md.
///
/// Labels inside a scenario are *step labels*: the position of a dataset label in the class order
/// (step 0's classes first, background 0 at 0), so that adding a step appends output channels.
#include <array>
#include <string>
#include <vector>

#include "cseg/data/class_index.h"
#include "cseg/scenarios/task_table.h"

namespace cseg::scenarios {

enum class Mode { Overlap, Disjoint, Sequential };
/// mib = MiB v1 and SDR; mibv2; plop = PLOP and continuum (overlap/disjoint);
/// cssegmentation = plop, and its disjoint runs drop test images with future classes;
/// ssul = SSUL's test protocol (training labels as plop until the unknown class lands).
enum class Protocol { Mib, MibV2, Plop, CSSegmentation, Ssul };

/// Names parse_mode and parse_protocol accept (for the config and `cseg list`).
std::vector<std::string> mode_names();
std::vector<std::string> protocol_names();
Mode parse_mode(const std::string& name);
Protocol parse_protocol(const std::string& name);
std::string to_string(Mode m);
std::string to_string(Protocol p);

using LabelMap = std::array<uint8_t, 256>;  ///< dataset label -> step label (255 ignore)

class Scenario {
 public:
  Scenario(TaskSteps steps, Mode mode, Protocol protocol, int num_classes);

  int num_steps() const { return static_cast<int>(steps_.size()); }
  Mode mode() const { return mode_; }
  Protocol protocol() const { return protocol_; }
  const TaskSteps& steps() const { return steps_; }
  /// Step labels introduced at `step`: [first_label(step), classes_after(step)).
  int first_label(int step) const;
  int classes_after(int step) const;
  /// Dataset label of a step label.
  int dataset_label(int step_label) const { return order_.at(step_label); }

  /// Training images of `step` (dataset indices), by the mode's rule. Throws if none.
  std::vector<size_t> train_images(int step, const std::vector<data::LabelSet>& index) const;
  /// Training label map: current classes kept, old -> 0 (sequential: kept), future -> 0,
  /// void -> 0 under mib, 255 otherwise.
  LabelMap train_labels(int step) const;

  /// Joint training up to `step`: every image with a seen foreground class, all seen labels kept.
  std::vector<size_t> cumulative_train_images(int step, const std::vector<data::LabelSet>& index) const;
  LabelMap cumulative_train_labels(int step) const;

  /// Evaluation images after `step` (val or test split), by the protocol. Throws if none.
  std::vector<size_t> eval_images(int step, const std::vector<data::LabelSet>& index) const;
  /// Evaluation label map: seen classes kept, future -> 255 (mib, mibv2, ssul) or 0 (plop).
  LabelMap eval_labels(int step) const;

 private:
  bool is_seen(int dataset_label, int step) const;
  bool is_future(int dataset_label, int step) const;

  TaskSteps steps_;
  Mode mode_;
  Protocol protocol_;
  int num_classes_;
  std::vector<int> order_;         ///< step label -> dataset label
  std::array<int, 256> position_;  ///< dataset label -> step label (-1 if not in the task)
  std::array<int, 256> step_of_;   ///< dataset label -> step introducing it (-1)
};

}  // namespace cseg::scenarios
