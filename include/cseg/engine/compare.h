#pragma once
/// Comparison tables across runs: final old/new/all mIoU, hIoU, forgetting, average mIoU, time
/// per step and peak memory per (scenario, method), mean ± std over seeds.
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cseg/metrics/significance.h"

namespace cseg::engine {

struct ComparisonRow {
  std::string scenario;  ///< "task mode" (e.g. "5-1 overlap")
  std::string method;
  int runs = 0;  ///< seeds aggregated
  /// Runs of this method and scenario left out because they have not finished the scenario's
  /// steps (fewer steps than the scenario's longest run): their last step is not the final one.
  int unfinished = 0;
  // mean and std over the runs (std 0 for one run); mIoU values in [0, 1], NaN when undefined
  double old_miou = 0, old_std = 0, new_miou = 0, new_std = 0, all_miou = 0, all_std = 0;
  double hiou = 0, hiou_std = 0, avg_miou = 0;
  double forgetting = 0;  ///< mean over the tasks before the last of max_i R[i][j] - R[T][j]
  double seconds_per_step = 0, peak_rss_mb = 0;
  /// Final old/new/all mIoU per seed (NaN where undefined), the samples of the tests below.
  std::map<int, double> old_by_seed, new_by_seed, all_by_seed;
  /// Against fine-tuning in the same scenario (metrics/significance.h: paired over common seeds,
  /// else Welch); p = 1 for fine-tuning itself or without a fine-tuning row.
  metrics::TTest old_vs_finetune, new_vs_finetune, all_vs_finetune;
};

/// One per-method results.json found under the paths given to compare_runs or a report.
struct MethodRun {
  std::string file;      ///< the results.json
  std::string scenario;  ///< "task mode"
  std::string method;
  nlohmann::json results;  ///< the parsed file (schema cseg.results/1)
};

/// Every per-method results.json with at least one finished step under `paths` (files, or folders
/// searched recursively), sorted by path; experiment-level files that only collect methods are
/// skipped. Throws naming a path that does not exist or a file that is not JSON.
std::vector<MethodRun> find_method_runs(const std::vector<std::string>& paths);

/// A value of results.json as a number: NaN for null (undefined) and, in the second form, for a
/// key the object does not have.
double number(const nlohmann::json& value);
double number(const nlohmann::json& object, const char* key);

/// A run's training cost over its finished steps.
struct TrainingCost {
  double seconds_per_step = 0;   ///< mean wall time of a step's training loop over steps 1..T
                                 ///< (step 0, the base model, only when it is the only step)
  double images_per_second = 0;  ///< over all steps; NaN without training time
  double peak_rss_mb = 0;        ///< the largest peak_rss_mb of a step; 0 when no step recorded one
};
TrainingCost training_cost(const nlohmann::json& results);

/// Mean and sample standard deviation of the values that are not NaN (NaN mean when none; std 0
/// for fewer than two).
struct MeanStd {
  double mean = 0, std = 0;
  int n = 0;
};
MeanStd mean_std(const std::vector<double>& values);

/// The rank of `method` in the method registry's order (baselines first), for sorting.
size_t method_rank(const std::string& method);

/// Reads every per-method results.json under `paths` (files or folders searched recursively;
/// experiment-level files that merely collect methods are skipped) and aggregates them.
std::vector<ComparisonRow> compare_runs(const std::vector<std::string>& paths);

/// One table per scenario (mean ± std over seeds; a ▲/▼ after old/new/all when the method is
/// significantly above/below fine-tuning), then the ranking by all-class mIoU with `>` where the
/// gap to the next method exceeds seed noise and `≈` where it does not.
std::string comparison_markdown(const std::vector<ComparisonRow>& rows);
/// The rows of one scenario ordered by all-class mIoU (best first), as "a > b ≈ c": `>` when
/// the two neighbours differ significantly (compare_seeds, p < 0.05).
std::string ranking(const std::vector<ComparisonRow>& scenario_rows);
std::string comparison_csv(const std::vector<ComparisonRow>& rows);

}  // namespace cseg::engine
