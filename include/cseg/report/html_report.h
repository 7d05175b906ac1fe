#pragma once
/// The HTML report: one self-contained page per run folder or suite (no network, no files beside
/// it) with what was run, per-step tables, mIoU curves, accuracy-matrix and confusion heatmaps,
/// per-class IoU bars, predicted masks and accuracy against cost. C++ gathers and aggregates the
/// numbers (mean ± std over seeds, as `cseg compare`); the page's own script lays them out and
/// draws the charts with Chart.js, inlined at build time.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace cseg::report {

/// The report's data from every per-method results.json under `paths` (run folders, suite
/// folders or files): scenarios ("task mode"), and per scenario the methods aggregated over their
/// seeds. Prediction images (predictions/step<k>.png beside a results.json) are embedded as data
/// URIs. Throws when `paths` hold no finished run.
nlohmann::json collect_report(const std::vector<std::string>& paths, const std::string& title);

/// The page for data from collect_report.
std::string render_report(const nlohmann::json& report);

/// collect_report + render_report, written atomically to `out`; returns the number of runs.
size_t write_report(const std::vector<std::string>& paths, const std::string& out, const std::string& title);

/// Whether this build inlines Chart.js (without it the report has tables and images only).
bool charts_built_in();

}  // namespace cseg::report
