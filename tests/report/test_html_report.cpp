// The HTML report and the label spaces behind every image cseg writes: aggregation over seeds,
// the self-contained page, and the page rendered in headless Chromium (charts and images drawn).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <regex>
#include <set>

#include "cseg/core/files.h"
#include "cseg/data/datasets.h"
#include "cseg/data/label_spaces.h"
#include "cseg/report/html_report.h"
#include "tiny_experiment.h"

using namespace cseg;
namespace fs = std::filesystem;

namespace {

/// A per-method results.json as the trainer writes it: 2 steps, 3 classes.
nlohmann::json fake_results(const std::string& method, int seed, double final_miou, double train_seconds) {
  auto step = [&](int k, double miou, nlohmann::json confusion) {
    return nlohmann::json{{"step", k},
                          {"new_classes", k == 0 ? nlohmann::json{"background", "a"} : nlohmann::json{"b"}},
                          {"train_images", 10},
                          {"iterations", 5},
                          {"train_seconds", train_seconds},
                          {"images_per_second", 20.0},
                          {"peak_rss_mb", 100.0 + seed},
                          {"task_miou", k == 0 ? nlohmann::json{miou, nullptr} : nlohmann::json{miou, 0.5}},
                          {"test",
                           {{"miou", miou},
                            {"miou_old", miou},
                            {"miou_new", k == 0 ? nlohmann::json() : nlohmann::json(0.5)},
                            {"hiou", nullptr},
                            {"per_class_iou", {miou, nullptr, 0.25}},
                            {"confusion", confusion}}}};
  };
  return {{"schema", "cseg.results/1"},
          {"experiment", "fake"},
          {"method", method},
          {"dataset", "folder"},
          {"task", "2-1"},
          {"mode", "overlap"},
          {"protocol", "plop"},
          {"model", "fast_scnn"},
          {"seed", seed},
          {"class_names", {"background", "a", "</script><b>b"}},
          {"class_colours", {{0, 0, 0}, {10, 20, 30}, {40, 50, 60}}},
          {"steps",
           {step(0, 0.8, {{1, 0, 0}, {0, 1, 0}, {0, 0, 0}}), step(1, final_miou, {{5, 1, 0}, {0, 2, 1}, {1, 0, 3}})}},
          {"accuracy_matrix", {{0.8, nullptr}, {final_miou, 0.5}}},
          {"forgetting", {0.8 - final_miou, nullptr}},
          {"bwt", final_miou - 0.8},
          {"avg_miou", (0.8 + final_miou) / 2},
          {"cost", {{"params", 1000}, {"macs_train", 2e9}, {"macs_test", 3e9}, {"latency_ms_median", 4.0}}}};
}

void write_run(const fs::path& dir, const nlohmann::json& results) {
  fs::create_directories(dir);
  core::write_text_atomic((dir / "results.json").string(), results.dump());
}

const nlohmann::json* find_method(const nlohmann::json& scenario, const std::string& name) {
  for (const auto& m : scenario["methods"])
    if (m["name"] == name) return &m;
  return nullptr;
}

struct Output {
  int code;
  std::string text;
};
Output shell(const std::string& cmd) {
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

}  // namespace

TEST(LabelSpaces, NamesAndPalettesOfTheKnownDatasets) {
  struct Expect {
    std::string name;
    size_t classes;
    int label;
    std::array<uint8_t, 3> colour;
    std::string class_name;
  };
  const std::vector<Expect> cases{
      {"voc", 21, 15, {192, 128, 128}, "person"},       {"cityscapes", 19, 0, {128, 64, 128}, "road"},
      {"cityscapes", 19, 18, {119, 11, 32}, "bicycle"}, {"ade20k", 151, 1, {120, 120, 120}, "wall"},
      {"ade20k", 151, 150, {92, 0, 255}, "flag"},       {"nyu40", 41, 1, {174, 199, 232}, "wall"},
      {"nyu40", 41, 40, {100, 85, 144}, "otherprop"},   {"fmnist_scenes", 11, 10, {23, 190, 207}, "ankle boot"},
  };
  for (const auto& c : cases) {
    const auto& s = data::label_space(c.name);
    EXPECT_EQ(s.class_names.size(), c.classes) << c.name;
    ASSERT_EQ(s.palette.size(), 256u) << c.name;
    EXPECT_EQ(s.palette[c.label], c.colour) << c.name << " label " << c.label;
    EXPECT_EQ(s.class_names[c.label], c.class_name) << c.name;
  }
  // Within a label space every class has its own colour, but for the one clash of the reference
  // ADE20K palette (road and skyscraper share 140,140,140), kept as published.
  for (const auto& name : data::label_space_names()) {
    const auto& s = data::label_space(name);
    std::set<std::array<uint8_t, 3>> colours(s.palette.begin(), s.palette.begin() + s.class_names.size());
    EXPECT_EQ(colours.size(), s.class_names.size() - (name == "ade20k" ? 1 : 0)) << name;
  }
  EXPECT_EQ(data::label_space("ade20k").class_names[7], "road");
  EXPECT_EQ(data::label_space("ade20k").palette[7], data::label_space("ade20k").palette[49]);
  test::expect_error([] { data::label_space("coco"); }, {"unknown label space 'coco'", "nyu40"});
}

TEST(LabelSpaces, FolderDatasetTakesNamesAndColoursFromItsLabelSpace) {
  test::TempDir d;
  test::write_tiny_dataset(d / "data");
  auto c = test::tiny_dataset_config(d / "data");
  c.label_space = "nyu40";
  auto ds = data::make_dataset(c, "train");
  EXPECT_EQ(ds->info().class_names[1], "wall");
  EXPECT_EQ(ds->info().palette[2], (std::array<uint8_t, 3>{152, 223, 138}));
  c.label_space.clear();  // no label space: generic names, VOC colours
  ds = data::make_dataset(c, "train");
  EXPECT_EQ(ds->info().class_names[1], "class_1");
  EXPECT_EQ(ds->info().palette[1], (std::array<uint8_t, 3>{128, 0, 0}));
}

TEST(Report, AggregatesSeedsPerScenarioAndMethod) {
  test::TempDir d;
  write_run(d / "a/finetune", fake_results("finetune", 0, 0.2, 10));
  write_run(d / "b/finetune", fake_results("finetune", 1, 0.4, 30));
  write_run(d / "a/mib", fake_results("mib", 0, 0.6, 12));
  // Prediction images beside the first seed's results are embedded.
  fs::create_directories(d / "a/finetune/predictions");
  core::write_text_atomic((d / "a/finetune/predictions/step1.png").string(), "PNGDATA");
  // An experiment-level summary is not a run.
  core::write_text_atomic((d / "results.json").string(), R"({"schema": "cseg.experiment/1", "methods": {}})");

  const auto r = report::collect_report({d.str()}, "t");
  EXPECT_EQ(r["runs"], 3);
  ASSERT_EQ(r["scenarios"].size(), 1u);
  const auto& sc = r["scenarios"][0];
  EXPECT_EQ(sc["name"], "2-1 overlap");
  ASSERT_EQ(sc["methods"].size(), 2u);
  EXPECT_EQ(sc["methods"][0]["name"], "finetune");  // the registry's order
  const auto& ft = *find_method(sc, "finetune");
  EXPECT_EQ(ft["runs"], 2);
  EXPECT_NEAR(ft["final"]["miou"]["mean"].get<double>(), 0.3, 1e-9);
  EXPECT_NEAR(ft["final"]["miou"]["std"].get<double>(), std::sqrt(0.02), 1e-9);  // sample std of 0.2, 0.4
  EXPECT_TRUE(ft["final"]["hiou"]["mean"].is_null());
  EXPECT_NEAR(ft["accuracy_matrix"][1][0].get<double>(), 0.3, 1e-9);
  EXPECT_TRUE(ft["accuracy_matrix"][0][1].is_null());
  EXPECT_NEAR(ft["final"]["forgetting"].get<double>(), 0.5, 1e-9);  // mean of 0.6 and 0.4
  EXPECT_NEAR(ft["cost"]["seconds_per_step"].get<double>(), 20, 1e-9);
  EXPECT_NEAR(ft["cost"]["gmacs_train"].get<double>(), 2, 1e-9);
  EXPECT_NEAR(ft["cost"]["peak_rss_mb"].get<double>(), 100.5, 1e-9);
  EXPECT_NEAR(ft["per_class_iou"][1][2].get<double>(), 0.25, 1e-9);
  EXPECT_TRUE(ft["per_class_iou"][1][1].is_null());
  EXPECT_EQ(ft["confusion"][2][2].get<double>(), 6);  // summed over the two seeds
  EXPECT_TRUE(ft["images"][0].is_null());
  EXPECT_EQ(ft["images"][1], "data:image/png;base64,UE5HREFUQQ==");
  EXPECT_EQ(find_method(sc, "mib")->at("runs"), 1);

  const auto page = report::render_report(r);
  // The data goes in escaped: a class name cannot end the <script> element early.
  EXPECT_EQ(page.find("</script><b>b"), std::string::npos);
  EXPECT_NE(page.find("<\\/script><b>b"), std::string::npos);
  // Self-contained: nothing is fetched from anywhere.
  for (const char* external : {"src=\"http", "href=\"http", "<link ", "@import"})
    EXPECT_EQ(page.find(external), std::string::npos) << external;
  if (report::charts_built_in()) EXPECT_NE(page.find("Chart.js v"), std::string::npos);

  test::expect_error([&] { report::collect_report({(d / "nothing").string()}, "t"); }, {"nothing", "does not exist"});
  fs::create_directories(d / "empty");
  test::expect_error([&] { report::collect_report({(d / "empty").string()}, "t"); }, {"no per-method results.json"});
}

// A real suite (2 methods x 2 seeds) through the CLI, its report opened in headless Chromium: the
// page runs without errors, every chart draws marks in its plot area, every image decodes.
TEST(Report, SuiteReportRendersInHeadlessChromium) {
  const char* chromium = "/usr/bin/chromium";
  if (!fs::exists(chromium)) {
    if (std::getenv("CSEG_REQUIRE_CHROMIUM")) FAIL() << "chromium is not installed (scripts/setup.sh installs it)";
    GTEST_SKIP() << "chromium is not installed";
  }
  ASSERT_TRUE(report::charts_built_in()) << "this build has no Chart.js (install libjs-chart.js and reconfigure)";
  test::TempDir d;
  test::write_tiny_dataset(d / "data");
  core::write_text_atomic((d / "tiny.yaml").string(),
                          test::tiny_config_yaml((d / "data").string(), (d / "unused").string(), 1));
  core::write_text_atomic((d / "suite.yaml").string(),
                          fmt::format("name: grid\noutput_dir: {}\nscenarios: [tiny.yaml]\nmethods: [finetune, lwf]\n"
                                      "seeds: [0, 1]\nparallel: 2\noverrides: [train.iterations=2]\n",
                                      (d / "out").string()));
  auto run = shell(fmt::format("{} suite {}", CSEG_BINARY, (d / "suite.yaml").string()));
  ASSERT_EQ(run.code, 0) << run.text;
  const fs::path page = d / "out" / "report.html";
  ASSERT_TRUE(fs::exists(page)) << run.text;
  // Every run folder has its own report too.
  EXPECT_TRUE(fs::exists(d / "out/tiny/finetune_seed0/report.html"));
  EXPECT_TRUE(fs::exists(d / "out/tiny/finetune_seed0/finetune/predictions/step1.png"));

  // The test's probe goes in: an error recorder first, the checker last.
  std::string html = core::read_text(page.string());
  const std::string probe = core::read_text(std::string(CSEG_SOURCE_DIR) + "/tests/files/report_check.js");
  html.replace(html.find("<head>"), 6,
               "<head><script>window.__csegErrors=[];addEventListener('error',function(e){__csegErrors.push(String(e."
               "message))});</script>");
  html.replace(html.rfind("</body>"), 7, "<script>" + probe + "</script></body>");
  core::write_text_atomic((d / "probe.html").string(), html);

  const std::string flags = fmt::format(
      "--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking "
      "--disable-component-update --disable-sync --hide-scrollbars --user-data-dir={} --window-size=1300,2400 "
      "--virtual-time-budget=5000",
      (d / "chromium-profile").string());
  auto dom = shell(fmt::format("timeout 120 {} {} --dump-dom file://{}", chromium, flags, (d / "probe.html").string()));
  ASSERT_EQ(dom.code, 0) << dom.text.substr(0, 2000);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(dom.text, m, std::regex("<pre id=\"cseg-check\">([^<]*)</pre>")))
      << "the probe did not run:\n"
      << dom.text.substr(0, 3000);
  std::string json = m[1];
  for (auto [from, to] :
       {std::pair<std::string, std::string>{"&quot;", "\""}, {"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"}})
    for (size_t p = json.find(from); p != std::string::npos; p = json.find(from, p + to.size()))
      json.replace(p, from.size(), to);
  const auto check = nlohmann::json::parse(json);
  EXPECT_TRUE(check["errors"].empty()) << check.dump();
  EXPECT_TRUE(check["rendered"].get<bool>()) << check.dump();
  // 3 mIoU curves + per-class bars + at least one accuracy-versus-cost scatter.
  EXPECT_GE(check["charts"].get<int>(), 5) << check.dump();
  EXPECT_EQ(check["charts_with_marks"], check["charts"]) << check.dump();
  // 2 methods x 2 steps of predictions, all decoded.
  EXPECT_EQ(check["images"].get<int>(), 4) << check.dump();
  EXPECT_EQ(check["images_loaded"], check["images"]) << check.dump();
  // Accuracy matrices (2 x 2x2, 1 undefined cell each) and confusion matrices (2 x 5x5).
  EXPECT_EQ(check["heat_cells"].get<int>(), 2 * 3 + 2 * 25) << check.dump();
  const auto headings = check["headings"].dump();
  for (const char* h : {"mIoU over steps", "Accuracy matrix", "Per-class IoU", "Confusion matrix", "Predictions",
                        "Accuracy versus cost", "What was run"})
    EXPECT_NE(headings.find(h), std::string::npos) << headings;

  // A screenshot to look at (ctest leaves it in the build's tests folder).
  auto shot = shell(fmt::format("timeout 120 {} {} --screenshot={} file://{}", chromium, flags,
                                (fs::current_path() / "report_screenshot.png").string(), page.string()));
  EXPECT_EQ(shot.code, 0) << shot.text;
}
