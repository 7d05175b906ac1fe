#include "cseg/engine/compare.h"

#include <cmath>
#include <filesystem>
#include <map>

#include "cseg/core/error.h"
#include "cseg/core/files.h"
#include "cseg/methods/method.h"

namespace fs = std::filesystem;

namespace cseg::engine {

namespace {

struct Stat {
  std::vector<double> v;
  void add(double x) { v.push_back(x); }
  double mean() const { return mean_std(v).mean; }
  double stddev() const { return mean_std(v).std; }
};

std::string pct(double v) { return std::isnan(v) ? "-" : fmt::format("{:.1f}", 100 * v); }
std::string pct_pm(double v, double sd, int runs) {
  if (std::isnan(v)) return "-";
  return runs > 1 ? fmt::format("{:.1f} ± {:.1f}", 100 * v, 100 * sd) : pct(v);
}
}  // namespace

double number(const nlohmann::json& value) { return value.is_number() ? value.get<double>() : std::nan(""); }

double number(const nlohmann::json& object, const char* key) {
  return object.contains(key) ? number(object[key]) : std::nan("");
}

TrainingCost training_cost(const nlohmann::json& results) {
  double seconds = 0, images = 0, rss = 0;
  int counted = 0;
  const auto& steps = results["steps"];
  for (const auto& s : steps) {
    rss = std::max(rss, s.contains("peak_rss_mb") ? number(s["peak_rss_mb"]) : 0.0);
    // The base model's training (step 0, often shared between runs) is not a continual step.
    if (steps.size() > 1 && s.value("step", 0) == 0) continue;
    seconds += number(s["train_seconds"]);
    images += number(s["images_per_second"]) * number(s["train_seconds"]);
    ++counted;
  }
  return {counted > 0 ? seconds / counted : std::nan(""), seconds > 0 ? images / seconds : std::nan(""), rss};
}

MeanStd mean_std(const std::vector<double>& values) {
  MeanStd r;
  double sum = 0;
  for (double x : values)
    if (!std::isnan(x)) sum += x, ++r.n;
  if (r.n == 0) return {std::nan(""), 0, 0};
  r.mean = sum / r.n;
  double sq = 0;
  for (double x : values)
    if (!std::isnan(x)) sq += (x - r.mean) * (x - r.mean);
  r.std = r.n > 1 ? std::sqrt(sq / (r.n - 1)) : 0.0;
  return r;
}

size_t method_rank(const std::string& method) {
  static const auto names = methods::method_names();
  return size_t(std::find(names.begin(), names.end(), method) - names.begin());
}

std::vector<MethodRun> find_method_runs(const std::vector<std::string>& paths) {
  std::vector<fs::path> files;
  for (const auto& p : paths) {
    CSEG_CHECK(fs::exists(p), "'{}' does not exist (expected a run folder or a results.json)", p);
    if (fs::is_regular_file(p)) {
      files.emplace_back(p);
      continue;
    }
    for (const auto& e : fs::recursive_directory_iterator(p))
      if (e.is_regular_file() && e.path().filename() == "results.json") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  std::vector<MethodRun> runs;
  for (const auto& f : files) {
    auto j = nlohmann::json::parse(core::read_text(f.string()), nullptr, false);
    CSEG_CHECK(!j.is_discarded(), "'{}' is not valid JSON", f.string());
    if (!j.contains("method") || !j.contains("steps") || j["steps"].empty()) continue;  // experiment summaries
    const std::string scenario =
        fmt::format("{} {}", j.value("task", std::string("?")), j.value("mode", std::string("?")));
    runs.push_back({f.string(), scenario, j["method"].get<std::string>(), std::move(j)});
  }
  return runs;
}

std::vector<ComparisonRow> compare_runs(const std::vector<std::string>& paths) {
  struct Acc {
    Stat old_m, new_m, all_m, hiou, forgetting, avg, seconds, rss;
    std::map<int, double> old_seed, new_seed, all_seed;
  };
  std::map<std::pair<std::string, std::string>, Acc> acc;
  std::vector<std::pair<std::string, std::string>> order;
  const auto runs = find_method_runs(paths);
  // A run still under way (a suite in progress) has fewer steps than its scenario: its last step
  // is not the final one, so it is left out and counted. A scenario's length is its longest run's.
  std::map<std::string, size_t> scenario_steps;
  for (const auto& run : runs)
    scenario_steps[run.scenario] = std::max(scenario_steps[run.scenario], run.results["steps"].size());
  std::map<std::pair<std::string, std::string>, int> unfinished;
  for (const auto& run : runs) {
    const auto& j = run.results;
    const auto key = std::make_pair(run.scenario, run.method);
    if (j["steps"].size() < scenario_steps[run.scenario]) {
      ++unfinished[key];
      continue;
    }
    if (!acc.count(key)) order.push_back(key);
    auto& a = acc[key];
    const auto& last = j["steps"].back()["test"];
    a.old_m.add(number(last["miou_old"]));
    a.new_m.add(number(last["miou_new"]));
    a.all_m.add(number(last["miou"]));
    const int seed = j.value("seed", 0);
    a.old_seed[seed] = number(last["miou_old"]);
    a.new_seed[seed] = number(last["miou_new"]);
    a.all_seed[seed] = number(last["miou"]);
    a.hiou.add(number(last["hiou"]));
    {  // mean forgetting over the tasks that have one
      Stat f;
      if (j["forgetting"].is_array())
        for (const auto& v : j["forgetting"]) f.add(number(v));
      a.forgetting.add(f.mean());
    }
    a.avg.add(number(j["avg_miou"]));
    const auto cost = training_cost(j);
    a.seconds.add(cost.seconds_per_step);
    a.rss.add(cost.peak_rss_mb);
  }
  std::vector<ComparisonRow> rows;
  for (const auto& key : order) {
    const auto& a = acc[key];
    ComparisonRow r;
    r.scenario = key.first;
    r.method = key.second;
    r.runs = int(a.all_m.v.size());
    r.unfinished = unfinished.count(key) ? unfinished.at(key) : 0;
    r.old_miou = a.old_m.mean(), r.old_std = a.old_m.stddev();
    r.new_miou = a.new_m.mean(), r.new_std = a.new_m.stddev();
    r.all_miou = a.all_m.mean(), r.all_std = a.all_m.stddev();
    r.hiou = a.hiou.mean(), r.hiou_std = a.hiou.stddev();
    r.forgetting = a.forgetting.mean();
    r.avg_miou = a.avg.mean();
    r.seconds_per_step = a.seconds.mean();
    r.peak_rss_mb = a.rss.mean();
    r.old_by_seed = a.old_seed;
    r.new_by_seed = a.new_seed;
    r.all_by_seed = a.all_seed;
    rows.push_back(r);
  }
  for (auto& r : rows) {
    if (r.method == "finetune") continue;
    for (const auto& f : rows)
      if (f.scenario == r.scenario && f.method == "finetune") {
        r.old_vs_finetune = metrics::compare_seeds(r.old_by_seed, f.old_by_seed);
        r.new_vs_finetune = metrics::compare_seeds(r.new_by_seed, f.new_by_seed);
        r.all_vs_finetune = metrics::compare_seeds(r.all_by_seed, f.all_by_seed);
      }
  }
  // Scenarios alphabetically, methods in the registry's order (baselines first).
  std::stable_sort(rows.begin(), rows.end(), [&](const auto& x, const auto& y) {
    return x.scenario != y.scenario ? x.scenario < y.scenario : method_rank(x.method) < method_rank(y.method);
  });
  return rows;
}

std::string ranking(const std::vector<ComparisonRow>& scenario_rows) {
  std::vector<const ComparisonRow*> order;
  for (const auto& r : scenario_rows)
    if (!std::isnan(r.all_miou)) order.push_back(&r);
  std::stable_sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->all_miou > b->all_miou; });
  std::string out;
  for (size_t i = 0; i < order.size(); ++i) {
    if (i > 0)
      out += metrics::compare_seeds(order[i - 1]->all_by_seed, order[i]->all_by_seed).significant() ? " > " : " ≈ ";
    out += order[i]->method;
  }
  return out;
}

std::string comparison_markdown(const std::vector<ComparisonRow>& rows) {
  // ▲ / ▼: significantly above / below fine-tuning (two-sided p < 0.05).
  auto mark = [](const metrics::TTest& t) {
    return !t.significant() ? std::string() : t.difference > 0 ? std::string(" ▲") : std::string(" ▼");
  };
  std::string out;
  auto flush = [&](const std::vector<ComparisonRow>& scenario_rows) {
    if (scenario_rows.empty()) return;
    out += fmt::format("\nRanking by all-class mIoU: {}\n", ranking(scenario_rows));
  };
  std::vector<ComparisonRow> current;
  for (const auto& r : rows) {
    if (current.empty() || r.scenario != current.front().scenario) {
      flush(current);
      current.clear();
      out += fmt::format("\n**{}** (final step, test set; mIoU %)\n\n", r.scenario);
      out += "| method | old | new | all | hIoU | forgetting | avg mIoU | s / step | peak MB | runs |\n";
      out += "|---|---|---|---|---|---|---|---|---|---|\n";
    }
    current.push_back(r);
    out += fmt::format(
        "| {} | {}{} | {}{} | {}{} | {} | {} | {} | {:.1f} | {:.0f} | {} |\n", r.method,
        pct_pm(r.old_miou, r.old_std, r.runs), mark(r.old_vs_finetune), pct_pm(r.new_miou, r.new_std, r.runs),
        mark(r.new_vs_finetune), pct_pm(r.all_miou, r.all_std, r.runs), mark(r.all_vs_finetune),
        pct_pm(r.hiou, r.hiou_std, r.runs), pct(r.forgetting), pct(r.avg_miou), r.seconds_per_step, r.peak_rss_mb,
        r.unfinished ? fmt::format("{} (+{} unfinished)", r.runs, r.unfinished) : std::to_string(r.runs));
  }
  flush(current);
  if (!rows.empty())
    out +=
        "\n▲ / ▼: significantly above / below fine-tuning; `>`: the gap to the next method is significant, `≈`: "
        "within seed noise. Tests over the runs' seeds: paired t-test where both have the same seeds (>= 2), "
        "else Welch's; two-sided p < 0.05 per comparison, no correction for multiple comparisons.\n";
  return out;
}

std::string comparison_csv(const std::vector<ComparisonRow>& rows) {
  std::string out =
      "scenario,method,runs,miou_old,miou_old_std,miou_new,miou_new_std,miou_all,miou_all_std,hiou,hiou_std,"
      "forgetting,avg_miou,seconds_per_step,peak_rss_mb,p_old_vs_finetune,p_new_vs_finetune,p_all_vs_finetune\n";
  for (const auto& r : rows)
    out += fmt::format(
        "{},{},{},{:.4f},{:.4f},{:.4f},{:.4f},{:.4f},{:.4f},{:.4f},{:.4f},{:.4f},{:.4f},{:.2f},{:.0f},"
        "{:.4g},{:.4g},{:.4g}\n",
        r.scenario, r.method, r.runs, r.old_miou, r.old_std, r.new_miou, r.new_std, r.all_miou, r.all_std, r.hiou,
        r.hiou_std, r.forgetting, r.avg_miou, r.seconds_per_step, r.peak_rss_mb, r.old_vs_finetune.p,
        r.new_vs_finetune.p, r.all_vs_finetune.p);
  return out;
}

}  // namespace cseg::engine
