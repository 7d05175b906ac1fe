#pragma once
/// Class-incremental task tables: which dataset labels each step introduces.
#include <string>
#include <vector>

namespace cseg::scenarios {

/// steps[k] = dataset labels introduced at step k; background 0 always belongs to step 0.
using TaskSteps = std::vector<std::vector<int>>;

/// Resolves `task` for a dataset with `num_classes` labels (background included):
///  1. a named table of that dataset (VOC 19-1b, 15-5s, ...; see task_table.cpp),
///  2. "offline" (one step with everything),
///  3. a generic spec: "a-b" = labels 0..a, then blocks of b up to the last label;
///     "a-b-c[-...]" = blocks of exactly a, b, c, ... labels (must cover every label).
/// Throws, listing the named tasks, when the spec does not fit the dataset.
TaskSteps resolve_task(const std::string& dataset, const std::string& task, int num_classes);

/// Re-orders: step 0 = {0} + order[1..first_step_size], etc. (PLOP/SSUL class orders).
/// `order` must be a permutation of 0..num_classes-1 starting with 0.
TaskSteps apply_order(const TaskSteps& natural, const std::vector<int>& order, int num_classes);

/// Checks steps form a partition of 0..num_classes-1 with 0 in step 0; throws otherwise.
void validate_steps(const TaskSteps& steps, int num_classes, const std::string& what);

struct NamedTask {
  std::string dataset, name, table;  ///< table: steps separated by '|', e.g. "0-15|16|17"
};
/// The table of named tasks (data, in the style of the MiB/PLOP tasks.py).
const std::vector<NamedTask>& named_tasks();

}  // namespace cseg::scenarios
