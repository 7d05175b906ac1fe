// A step's evaluation and the run's summary: the test sets after each step, the entry of
// results.json's "steps", the accuracy matrix and the continual metrics from it.
#include <algorithm>

#include "cseg/core/clock.h"
#include "cseg/core/log.h"
#include "cseg/core/runtime.h"
#include "cseg/engine/trainer.h"
#include "cseg/metrics/continual.h"

namespace cseg::engine {

namespace {

/// {"median", "p90"} of a step's iteration times in ms (null when it trained no iteration here).
nlohmann::json iteration_ms(std::vector<double> seconds) {
  if (seconds.empty()) return nullptr;
  std::sort(seconds.begin(), seconds.end());
  auto at = [&](double q) { return 1000 * seconds[std::min(seconds.size() - 1, size_t(q * double(seconds.size())))]; };
  return {{"median", at(0.5)}, {"p90", at(0.9)}};
}

nlohmann::json opt_json(const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(); }
/// The inverse of opt_json for a list: null -> nullopt.
std::vector<std::optional<double>> optional_values(const nlohmann::json& list) {
  std::vector<std::optional<double>> v;
  for (const auto& x : list) v.push_back(x.is_null() ? std::nullopt : std::optional<double>(x.get<double>()));
  return v;
}

nlohmann::json opt_json(const std::vector<std::optional<double>>& v) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& x : v) j.push_back(opt_json(x));
  return j;
}

}  // namespace

EncodedImage Trainer::prediction_grid(int k) {
  const auto& sc = *data_.scenario;
  const auto& split = data_.test_split(k);
  const int sk = data_.scenario_step(k);
  auto grid = engine::prediction_grid(*model_, *split.dataset, sc.eval_images(sk, split.index), sc.eval_labels(sk),
                                      method_eval_options(sc.classes_after(sk)), data_.palette);
  model_->train();
  return grid;
}

void Trainer::summarize() {
  if (results_["steps"].empty()) return;
  // Accuracy matrix over tasks (R[i][j] = mIoU on task j's classes after step i).
  metrics::AccuracyMatrix r;
  for (const auto& s : results_["steps"]) {
    auto row = optional_values(s["task_miou"]);
    row.resize(data_.num_steps());
    r.push_back(row);
  }
  results_["accuracy_matrix"] = nlohmann::json::array();
  for (const auto& row : r) results_["accuracy_matrix"].push_back(opt_json(row));
  results_["forgetting"] = opt_json(metrics::forgetting(r));
  results_["bwt"] = opt_json(metrics::backward_transfer(r));
  results_["acc"] = opt_json(metrics::final_average(r));
  if (data_.domain() && results_.contains("initial_task_miou"))
    results_["fwt"] = opt_json(metrics::forward_transfer(r, optional_values(results_["initial_task_miou"])));
  // adaptation.detect: how the detector did over the arrivals so far.
  int arrivals = 0, noticed = 0, false_alarms = 0;
  double delay = 0;
  for (const auto& s : results_["steps"]) {
    if (!s.contains("detection") || s["detection"].is_null()) continue;
    ++arrivals;
    false_alarms += s["detection"]["false_alarms"].get<int>();
    if (!s["detection"]["detected"].get<bool>()) continue;
    ++noticed;
    delay += s["detection"]["delay_frames"].get<double>();
  }
  if (arrivals > 0)
    results_["detection"] = {{"arrivals", arrivals},
                             {"detected", noticed},
                             {"mean_delay_frames", noticed > 0 ? nlohmann::json(delay / noticed) : nlohmann::json()},
                             {"false_alarms", false_alarms}};
  double avg = 0;
  for (const auto& s : results_["steps"]) avg += s["test"]["miou"].get<double>();
  results_["avg_miou"] = avg / results_["steps"].size();
}

std::vector<Trainer::Evaluation> Trainer::evaluate_environments() {
  const auto& sc = *data_.scenario;
  std::vector<Evaluation> out;
  for (const auto& e : data_.environments) {
    const auto images = sc.eval_images(0, e.test.index);
    auto cm = evaluate(*model_, *e.test.dataset, images, sc.eval_labels(0), method_eval_options(sc.classes_after(0)));
    const auto scores = metrics::score(cm);
    out.push_back({std::move(cm), scores, images.size()});
  }
  model_->train();
  return out;
}

nlohmann::json Trainer::evaluate_step(int k, const StepTiming& timing) {
  const auto& sc = *data_.scenario;
  const auto start = core::Clock::now();
  // Class-incremental: the step's test images; old = step-0 classes, new = later ones, and
  // R[k][j] = mIoU over step j's classes. Domain-incremental: every environment's test set;
  // R[k][j] = mIoU on environment j (past and future), old = mean over the earlier environments,
  // new = the current one, all = mean over the environments seen so far; the per-class figures and
  // the confusion matrix are the current environment's.
  Evaluation current;  // the step's own test set: per-class figures and confusion matrix
  std::optional<double> old_miou, new_miou, all_miou;
  std::vector<std::optional<double>> task_miou;
  std::vector<std::string> new_names;
  if (data_.domain()) {
    auto all = evaluate_environments();
    for (const auto& e : all) task_miou.push_back(e.scores.miou);
    current = std::move(all[k]);
    auto mean = [&](int from, int to) -> std::optional<double> {
      if (from >= to) return std::nullopt;
      double sum = 0;
      for (int j = from; j < to; ++j) sum += task_miou[j].value_or(0);
      return sum / (to - from);
    };
    old_miou = mean(0, k);
    new_miou = task_miou[k];
    all_miou = mean(0, k + 1);
    new_names = {data_.environments[k].name};
  } else {
    const auto images = sc.eval_images(k, data_.test.index);
    current.images = images.size();
    current.cm =
        evaluate(*model_, *data_.test.dataset, images, sc.eval_labels(k), method_eval_options(sc.classes_after(k)));
    model_->train();
    current.scores = metrics::score(current.cm);
    old_miou = metrics::mean_iou(current.scores, 0, sc.classes_after(0));
    if (k > 0) new_miou = metrics::mean_iou(current.scores, sc.classes_after(0), sc.classes_after(k));
    all_miou = current.scores.miou;
    for (int j = 0; j <= k; ++j)
      task_miou.push_back(metrics::mean_iou(current.scores, sc.first_label(j), sc.classes_after(j)));
    new_names.assign(data_.class_names.begin() + (k == 0 ? 0 : sc.classes_after(k - 1)),
                     data_.class_names.begin() + sc.classes_after(k));
  }
  const double eval_seconds = core::seconds_since(start);
  const auto& s = current.scores;
  const auto& cm = current.cm;
  const int all_end = sc.classes_after(data_.scenario_step(k));
  nlohmann::json test{
      {"images", current.images},
      {"miou", opt_json(all_miou)},
      {"miou_old", opt_json(old_miou)},
      {"miou_new", opt_json(new_miou)},
      {"hiou", (old_miou && new_miou) ? nlohmann::json(metrics::harmonic_iou(*old_miou, *new_miou)) : nlohmann::json()},
      {"pixel_accuracy", s.pixel_accuracy},
      {"mean_accuracy", s.mean_accuracy},
      {"fw_iou", s.fw_iou},
      {"per_class_iou", opt_json(s.iou)},
      {"precision", opt_json(s.precision)},
      {"recall", opt_json(s.recall)},
      {"eval_seconds", eval_seconds}};
  nlohmann::json confusion = nlohmann::json::array();
  for (int t = 0; t < cm.num_classes(); ++t) {
    std::vector<int64_t> row(cm.counts().begin() + size_t(t) * cm.num_classes(),
                             cm.counts().begin() + size_t(t + 1) * cm.num_classes());
    confusion.push_back(row);
  }
  test["confusion"] = confusion;
  const double ips = timing.train_seconds > 0 ? timing.images / timing.train_seconds : 0;
  log::info("[{}] step {}: mIoU all {:.4f} | old {} | new {} ({} test images)", method_.name(), k, all_miou.value_or(0),
            old_miou ? fmt::format("{:.4f}", *old_miou) : "-", new_miou ? fmt::format("{:.4f}", *new_miou) : "-",
            current.images);
  return {{"step", k},
          {"new_classes", new_names},  // domain scenarios: the environment's name
          {"num_classes", all_end},
          {"train_images", timing.train_images},
          {"iterations", timing.iterations},
          {"epochs", timing.epochs},
          {"train_seconds", timing.train_seconds},
          {"images_per_second", ips},
          {"iteration_ms", iteration_ms(timing.iteration_seconds)},
          {"peak_rss_mb", core::peak_rss_mb()},
          {"method_stats", method_.stats()},
          {"data_wait_fraction", timing.train_seconds > 0 ? timing.data_wait_seconds / timing.train_seconds : 0},
          {"val_best_miou", timing.best_val >= 0 ? nlohmann::json(timing.best_val) : nlohmann::json()},
          {"task_miou", opt_json(task_miou)},
          {"pseudo_labels", timing.pseudo_labels},
          {"detection", timing.detection},
          {"shared_step0", timing.shared_step0.empty() ? nlohmann::json() : nlohmann::json(timing.shared_step0)},
          {"skipped_nonfinite", timing.skipped_nonfinite},
          {"test", test}};
}

}  // namespace cseg::engine
