#include "cseg/report/html_report.h"

#include <chrono>
#include <ctime>
#include <filesystem>
#include <map>
#include <set>

#include "cseg/core/error.h"
#include "cseg/core/files.h"
#include "cseg/data/label_spaces.h"
#include "cseg/engine/compare.h"

namespace fs = std::filesystem;

namespace cseg::report {

namespace assets {
extern const char* const kReportHtml;
extern const char* const kReportCss;
extern const char* const kReportJs;
extern const char* const kChartJs;
extern const bool kHaveChartJs;
}  // namespace assets

namespace {

using engine::number;

nlohmann::json finite_or_null(double v) { return std::isnan(v) ? nlohmann::json() : nlohmann::json(v); }

/// {mean, std, n} over the runs' values (NaN = undefined and skipped; mean null when none).
nlohmann::json mean_std_json(const std::vector<double>& values) {
  const auto s = engine::mean_std(values);
  return {{"mean", finite_or_null(s.mean)}, {"std", s.std}, {"n", s.n}};
}

nlohmann::json mean_of(const std::vector<double>& values) { return finite_or_null(engine::mean_std(values).mean); }

std::string base64(const std::string& bytes) {
  static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
    if (i + 1 < bytes.size()) v |= uint32_t(uint8_t(bytes[i + 1])) << 8;
    if (i + 2 < bytes.size()) v |= uint32_t(uint8_t(bytes[i + 2]));
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? alphabet[(v >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? alphabet[v & 63] : '=';
  }
  return out;
}

std::string read_if_exists(const fs::path& p) { return fs::is_regular_file(p) ? core::read_text(p.string()) : ""; }

/// One method of one scenario, aggregated over its runs (seeds).
nlohmann::json method_entry(const std::string& name, std::vector<const engine::MethodRun*> runs, int num_steps,
                            int num_classes) {
  std::sort(runs.begin(), runs.end(),
            [](auto* a, auto* b) { return a->results.value("seed", 0) < b->results.value("seed", 0); });
  nlohmann::json m;
  m["name"] = name;
  m["runs"] = runs.size();
  m["seeds"] = nlohmann::json::array();
  for (const auto* r : runs) m["seeds"].push_back(r->results.value("seed", 0));

  // Per step: test mIoU figures and training cost, over the runs that finished the step.
  m["steps"] = nlohmann::json::array();
  m["per_class_iou"] = nlohmann::json::array();
  for (int k = 0; k < num_steps; ++k) {
    std::map<std::string, std::vector<double>> v;
    std::vector<std::vector<double>> per_class(num_classes);
    for (const auto* r : runs) {
      const auto& steps = r->results["steps"];
      if (k >= int(steps.size())) continue;
      const auto& s = steps[k];
      for (const char* key : {"miou", "miou_old", "miou_new", "hiou"}) v[key].push_back(number(s["test"][key]));
      for (const char* key : {"train_seconds", "images_per_second", "peak_rss_mb"}) v[key].push_back(number(s, key));
      const auto& iou = s["test"]["per_class_iou"];
      for (int c = 0; c < num_classes; ++c) per_class[c].push_back(c < int(iou.size()) ? number(iou[c]) : std::nan(""));
    }
    if (v.empty()) break;
    nlohmann::json step{{"step", k}};
    for (const char* key : {"miou", "miou_old", "miou_new", "hiou"}) step[key] = mean_std_json(v[key]);
    for (const char* key : {"train_seconds", "images_per_second", "peak_rss_mb"}) step[key] = mean_of(v[key]);
    m["steps"].push_back(step);
    nlohmann::json row = nlohmann::json::array();
    for (const auto& c : per_class) row.push_back(mean_of(c));
    m["per_class_iou"].push_back(row);
  }

  // Accuracy matrix (mean per cell), and the final-step summary over the runs that finished.
  std::vector<const engine::MethodRun*> complete;
  for (const auto* r : runs)
    if (int(r->results["steps"].size()) == num_steps) complete.push_back(r);
  if (complete.empty()) complete = runs;
  nlohmann::json matrix = nlohmann::json::array();
  for (int i = 0; i < num_steps; ++i) {
    nlohmann::json row = nlohmann::json::array();
    for (int j = 0; j < num_steps; ++j) {
      std::vector<double> cell;
      for (const auto* r : complete) {
        const auto& a = r->results["accuracy_matrix"];
        cell.push_back(i < int(a.size()) && j < int(a[i].size()) ? number(a[i][j]) : std::nan(""));
      }
      row.push_back(mean_of(cell));
    }
    matrix.push_back(row);
  }
  m["accuracy_matrix"] = matrix;

  std::map<std::string, std::vector<double>> fin;
  nlohmann::json confusion;
  for (const auto* r : complete) {
    const auto& j = r->results;
    const auto& last = j["steps"].back()["test"];
    for (const char* key : {"miou", "miou_old", "miou_new", "hiou"}) fin[key].push_back(number(last[key]));
    std::vector<double> f;
    if (j.contains("forgetting"))
      for (const auto& x : j["forgetting"]) f.push_back(number(x));
    fin["forgetting"].push_back(engine::mean_std(f).mean);
    fin["bwt"].push_back(number(j, "bwt"));
    fin["avg_miou"].push_back(number(j, "avg_miou"));
    // Confusion matrices add up over seeds (pixel counts).
    if (last.contains("confusion") && last["confusion"].is_array()) {
      if (confusion.is_null()) {
        confusion = last["confusion"];
      } else if (confusion.size() == last["confusion"].size()) {
        for (size_t t = 0; t < confusion.size(); ++t)
          for (size_t p = 0; p < confusion[t].size(); ++p)
            confusion[t][p] = confusion[t][p].get<double>() + last["confusion"][t][p].get<double>();
      }
    }
  }
  nlohmann::json final;
  for (const char* key : {"miou", "miou_old", "miou_new", "hiou"}) final[key] = mean_std_json(fin[key]);
  for (const char* key : {"forgetting", "bwt", "avg_miou"}) final[key] = mean_of(fin[key]);
  m["final"] = final;
  m["confusion"] = confusion;

  // Cost: the final model's (params, multiply-adds, latency) and the training's (time, memory,
  // replay buffer), mean over runs.
  std::map<std::string, std::vector<double>> cost;
  for (const auto* r : complete) {
    const auto& j = r->results;
    const auto c = j.value("cost", nlohmann::json::object());
    cost["params"].push_back(number(c, "params"));
    cost["gmacs_train"].push_back(number(c, "macs_train") / 1e9);
    cost["gmacs_test"].push_back(number(c, "macs_test") / 1e9);
    cost["latency_ms"].push_back(number(c, "latency_ms_median"));
    const auto training = engine::training_cost(j);
    cost["seconds_per_step"].push_back(training.seconds_per_step);
    cost["images_per_second"].push_back(training.images_per_second);
    cost["peak_rss_mb"].push_back(training.peak_rss_mb > 0 ? training.peak_rss_mb : std::nan(""));
    const auto stats = j["steps"].back().value("method_stats", nlohmann::json::object());
    cost["replay_mb"].push_back(number(stats, "replay_bytes") / (1024.0 * 1024.0));
  }
  for (const auto& [key, values] : cost) m["cost"][key] = mean_of(values);

  // Prediction images of the first seed's run, per step.
  m["images"] = nlohmann::json::array();
  const fs::path dir = fs::path(runs.front()->file).parent_path() / "predictions";
  for (int k = 0; k < num_steps; ++k) {
    const auto png = read_if_exists(dir / fmt::format("step{}.png", k));
    m["images"].push_back(png.empty() ? nlohmann::json() : nlohmann::json("data:image/png;base64," + base64(png)));
  }
  return m;
}

/// results.json's class_colours; results written before they were recorded get the dataset's
/// palette by label index (right unless the run used a custom class order).
nlohmann::json class_colours(const nlohmann::json& results) {
  if (results.contains("class_colours")) return results["class_colours"];
  nlohmann::json colours = nlohmann::json::array();
  const auto* space = data::find_label_space(results.value("dataset", ""));
  const auto palette = space ? space->palette : data::voc_palette();
  for (size_t l = 0; l < results.value("class_names", std::vector<std::string>{}).size(); ++l)
    colours.push_back({palette[l][0], palette[l][1], palette[l][2]});
  return colours;
}

std::string now_text() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", std::localtime(&t));
  return buf;
}

void replace_all(std::string& text, const std::string& from, const std::string& to) {
  for (size_t pos = text.find(from); pos != std::string::npos; pos = text.find(from, pos + to.size()))
    text.replace(pos, from.size(), to);
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace

nlohmann::json collect_report(const std::vector<std::string>& paths, const std::string& title) {
  const auto runs = engine::find_method_runs(paths);
  CSEG_CHECK(!runs.empty(), "report: no per-method results.json with a finished step under {}", fmt::join(paths, ", "));
  // Scenarios alphabetically; methods in the registry's order.
  std::map<std::string, std::map<std::string, std::vector<const engine::MethodRun*>>> grouped;
  for (const auto& r : runs) grouped[r.scenario][r.method].push_back(&r);

  nlohmann::json report{{"title", title},
                        {"generated", now_text()},
                        {"cseg_version", CSEG_VERSION},
                        {"runs", runs.size()},
                        {"scenarios", nlohmann::json::array()}};
  for (const auto& [scenario, by_method] : grouped) {
    // The scenario's description from its longest run (all runs of a scenario share it).
    const engine::MethodRun* ref = nullptr;
    for (const auto& [method, list] : by_method)
      for (const auto* r : list)
        if (!ref || r->results["steps"].size() > ref->results["steps"].size()) ref = r;
    const auto& j = ref->results;
    const int num_steps = int(j["accuracy_matrix"].is_array() ? j["accuracy_matrix"][0].size() : j["steps"].size());
    const auto class_names = j.value("class_names", std::vector<std::string>{});
    nlohmann::json sc{{"name", scenario},
                      {"dataset", j.value("dataset", "?")},
                      {"model", j.value("model", "?")},
                      {"protocol", j.value("protocol", "?")},
                      {"class_names", class_names},
                      {"class_colours", class_colours(j)},
                      {"step_classes", nlohmann::json::array()},
                      {"methods", nlohmann::json::array()}};
    for (int k = 0; k < num_steps; ++k)
      sc["step_classes"].push_back(k < int(j["steps"].size()) ? j["steps"][k]["new_classes"] : nlohmann::json::array());

    std::vector<std::string> methods;
    std::set<int> seeds;
    for (const auto& [method, list] : by_method) {
      methods.push_back(method);
      for (const auto* r : list) seeds.insert(r->results.value("seed", 0));
    }
    std::stable_sort(methods.begin(), methods.end(),
                     [](const auto& a, const auto& b) { return engine::method_rank(a) < engine::method_rank(b); });
    for (const auto& method : methods)
      sc["methods"].push_back(method_entry(method, by_method.at(method), num_steps, int(class_names.size())));

    const auto& s0 = j["steps"][0];
    sc["summary"] = nlohmann::json::array({
        {"experiment", j.value("experiment", "?")},
        {"dataset", j.value("dataset", "?")},
        {"task / mode", fmt::format("{} / {}", j.value("task", "?"), j.value("mode", "?"))},
        {"label protocol", j.value("protocol", "?")},
        {"model", j.value("model", "?")},
        {"methods", fmt::format("{}", fmt::join(methods, ", "))},
        {"seeds", fmt::format("{}", fmt::join(seeds, ", "))},
        {"steps", fmt::format("{} ({} classes in all)", num_steps, class_names.size())},
        {"step 0 training",
         fmt::format("{} images, {} iterations", s0.value("train_images", 0), s0.value("iterations", 0))},
        {"results", fs::path(ref->file).parent_path().string()},
    });
    // The experiment folder (parent of the method folder) keeps the resolved config and command.
    const fs::path experiment_dir = fs::path(ref->file).parent_path().parent_path();
    sc["config_yaml"] = read_if_exists(experiment_dir / "config.yaml");
    sc["command"] = read_if_exists(experiment_dir / "command.txt");
    report["scenarios"].push_back(sc);
  }
  return report;
}

std::string render_report(const nlohmann::json& report) {
  // "</" inside the embedded JSON would end its <script> element early.
  std::string json = report.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  replace_all(json, "</", "<\\/");
  std::string page = assets::kReportHtml;
  // Substitute the small parts first: the large ones (data, Chart.js) are never searched again.
  replace_all(page, "@CSEG_VERSION@", CSEG_VERSION);
  replace_all(page, "@CSEG_TITLE@", html_escape(report.value("title", "cseg report")));
  replace_all(page, "@CSEG_STYLE@", assets::kReportCss);
  const auto put = [&page](const std::string& marker, const std::string& text) {
    const auto pos = page.find(marker);
    CSEG_CHECK(pos != std::string::npos, "report template lacks {}", marker);
    page.replace(pos, marker.size(), text);
  };
  put("@CSEG_SCRIPT@", assets::kReportJs);
  put("@CSEG_CHARTJS@", assets::kChartJs);
  put("@CSEG_DATA@", json);
  return page;
}

size_t write_report(const std::vector<std::string>& paths, const std::string& out, const std::string& title) {
  const auto report = collect_report(paths, title);
  if (!fs::path(out).parent_path().empty()) fs::create_directories(fs::path(out).parent_path());
  core::write_text_atomic(out, render_report(report));
  return report["runs"].get<size_t>();
}

bool charts_built_in() { return assets::kHaveChartJs; }

}  // namespace cseg::report
