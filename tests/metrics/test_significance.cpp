// Seed noise: Student's t p-values against closed forms and printed tables, the paired and Welch
// tests on hand-computed samples, and the comparison table's marks and ranking built on them.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "cseg/core/error.h"
#include "cseg/core/files.h"
#include "cseg/engine/compare.h"
#include "cseg/metrics/significance.h"

using namespace cseg;
namespace fs = std::filesystem;

TEST(Significance, StudentTMatchesClosedFormsAndTables) {
  // df = 1 is the Cauchy distribution: P(|T| >= t) = 1 - (2 / pi) atan(t).
  for (double t : {0.3, 1.0, 4.0})
    EXPECT_NEAR(metrics::student_t_two_sided_p(t, 1), 1 - 2 / M_PI * std::atan(t), 1e-10);
  // df = 2: P(|T| >= t) = 1 - t / sqrt(t^2 + 2).
  for (double t : {0.5, 2.0, 4.303})
    EXPECT_NEAR(metrics::student_t_two_sided_p(t, 2), 1 - t / std::sqrt(t * t + 2), 1e-10);
  // Printed two-sided 5 % and 1 % critical values.
  EXPECT_NEAR(metrics::student_t_two_sided_p(3.182, 3), 0.05, 2e-4);
  EXPECT_NEAR(metrics::student_t_two_sided_p(2.776, 4), 0.05, 2e-4);
  EXPECT_NEAR(metrics::student_t_two_sided_p(2.228, 10), 0.05, 2e-4);
  EXPECT_NEAR(metrics::student_t_two_sided_p(4.032, 5), 0.01, 1e-4);
  EXPECT_NEAR(metrics::student_t_two_sided_p(-2.042, 30), 0.05, 2e-4);  // symmetric
  EXPECT_DOUBLE_EQ(metrics::student_t_two_sided_p(0, 7), 1.0);
  EXPECT_THROW(metrics::student_t_two_sided_p(1, 0), Error);
}

TEST(Significance, PairedTestOnHandComputedDifferences) {
  // Differences 1, 1, 2: mean 4/3, sd sqrt(1/3), standard error 1/3, t = 4, df = 2.
  auto r = metrics::paired_t_test({1, 2, 3}, {0, 1, 1});
  EXPECT_TRUE(r.paired);
  EXPECT_EQ(r.n, 3);
  EXPECT_NEAR(r.difference, 4.0 / 3, 1e-12);
  EXPECT_NEAR(r.t, 4.0, 1e-12);
  EXPECT_DOUBLE_EQ(r.df, 2);
  EXPECT_NEAR(r.p, 1 - 4 / std::sqrt(18.0), 1e-10);
  EXPECT_FALSE(r.significant());  // p = 0.057
  EXPECT_TRUE(r.significant(0.1));
  // A constant non-zero difference has no spread: certainly different; none at all: no difference.
  EXPECT_EQ(metrics::paired_t_test({2, 3, 4}, {1, 2, 3}).p, 0);
  EXPECT_EQ(metrics::paired_t_test({2, 3, 4}, {2, 3, 4}).p, 1);
  EXPECT_THROW(metrics::paired_t_test({1, 2}, {1}), Error);
}

TEST(Significance, WelchTestOnHandComputedSamples) {
  // a: mean 2.5, variance 5/3; b: mean 5, variance 20/3 (n = 4 each).
  auto r = metrics::welch_t_test({1, 2, 3, 4}, {2, 4, 6, 8});
  const double va = 5.0 / 3 / 4, vb = 20.0 / 3 / 4;
  EXPECT_FALSE(r.paired);
  EXPECT_NEAR(r.difference, -2.5, 1e-12);
  EXPECT_NEAR(r.t, -2.5 / std::sqrt(va + vb), 1e-12);
  EXPECT_NEAR(r.df, (va + vb) * (va + vb) / (va * va / 3 + vb * vb / 3), 1e-12);
  EXPECT_NEAR(r.p, metrics::student_t_two_sided_p(r.t, r.df), 1e-15);
  // df lies between 4 and 5 here, so p lies between theirs.
  EXPECT_GT(r.p, metrics::student_t_two_sided_p(r.t, 5));
  EXPECT_LT(r.p, metrics::student_t_two_sided_p(r.t, 4));
}

TEST(Significance, SeedsArePairedWhenShared) {
  // Same seeds: paired (the seed-to-seed swing cancels); other seeds: Welch over all values.
  std::map<int, double> a{{0, 0.50}, {1, 0.60}, {2, 0.70}}, b{{0, 0.45}, {1, 0.56}, {2, 0.64}};
  auto paired = metrics::compare_seeds(a, b);
  EXPECT_TRUE(paired.paired);
  EXPECT_TRUE(paired.significant());
  std::map<int, double> c{{3, 0.45}, {4, 0.56}, {5, 0.64}};
  auto welch = metrics::compare_seeds(a, c);
  EXPECT_FALSE(welch.paired);
  EXPECT_FALSE(welch.significant());  // the same values, unpaired: the spread hides the gap
  // One run each: no test.
  auto one = metrics::compare_seeds({{0, 0.5}}, {{0, 0.4}});
  EXPECT_EQ(one.p, 1);
  EXPECT_NEAR(one.difference, 0.1, 1e-12);
}

namespace {
nlohmann::json run_results(const std::string& method, int seed, double old_miou, double all_miou) {
  return {
      {"method", method},
      {"task", "2-1"},
      {"mode", "overlap"},
      {"seed", seed},
      {"steps",
       {{{"step", 0}, {"train_seconds", 1.0}, {"images_per_second", 1.0}, {"test", {{"miou", 0.9}, {"miou_old", 0.9}}}},
        {{"step", 1},
         {"train_seconds", 1.0},
         {"images_per_second", 1.0},
         {"test", {{"miou", all_miou}, {"miou_old", old_miou}, {"miou_new", 0.5}, {"hiou", 0.5}}}}}},
      {"forgetting", {0.1, nullptr}},
      {"avg_miou", 0.7}};
}
}  // namespace

TEST(Significance, ComparisonTableMarksAndRanksBySeedNoise) {
  const fs::path dir = fs::temp_directory_path() / "cseg_test_significance";
  fs::remove_all(dir);
  // finetune forgets; mib keeps the old classes on every seed; lwf is finetune plus noise.
  const double ft[3] = {0.20, 0.30, 0.25}, mib[3] = {0.60, 0.72, 0.66}, lwf[3] = {0.24, 0.27, 0.27};
  for (int s = 0; s < 3; ++s)
    for (const auto& [m, v] :
         std::vector<std::pair<std::string, double>>{{"finetune", ft[s]}, {"mib", mib[s]}, {"lwf", lwf[s]}}) {
      fs::create_directories(dir / (m + std::to_string(s)));
      core::write_text_atomic((dir / (m + std::to_string(s)) / "results.json").string(),
                              run_results(m, s, v, v).dump());
    }
  const auto rows = engine::compare_runs({dir.string()});
  ASSERT_EQ(rows.size(), 3u);
  for (const auto& r : rows) {
    EXPECT_EQ(r.runs, 3);
    if (r.method == "mib") {
      EXPECT_TRUE(r.old_vs_finetune.paired);
      EXPECT_TRUE(r.old_vs_finetune.significant());
      EXPECT_GT(r.old_vs_finetune.difference, 0.3);
    }
    if (r.method == "lwf") EXPECT_FALSE(r.old_vs_finetune.significant());
    if (r.method == "finetune") EXPECT_EQ(r.old_vs_finetune.p, 1);
  }
  const auto md = engine::comparison_markdown(rows);
  EXPECT_NE(md.find("| mib | 66.0 ± 6.0 ▲ |"), std::string::npos) << md;
  EXPECT_NE(md.find("Ranking by all-class mIoU: mib > lwf ≈ finetune"), std::string::npos) << md;
  EXPECT_NE(engine::comparison_csv(rows).find("p_all_vs_finetune"), std::string::npos);
  // s / step leaves out step 0 (the base model): 1 s over the one continual step.
  EXPECT_DOUBLE_EQ(rows[0].seconds_per_step, 1.0);
  // A fourth mib run still under way (only step 0 done) is left out and counted, not averaged in
  // with its step 0 as if it were final.
  auto running = run_results("mib", 3, 0.9, 0.9);
  running["steps"].erase(1);
  fs::create_directories(dir / "mib3");
  core::write_text_atomic((dir / "mib3" / "results.json").string(), running.dump());
  const auto with_running = engine::compare_runs({dir.string()});
  for (const auto& r : with_running) {
    EXPECT_EQ(r.runs, 3) << r.method;
    EXPECT_EQ(r.unfinished, r.method == "mib" ? 1 : 0) << r.method;
  }
  EXPECT_NE(engine::comparison_markdown(with_running).find("| 3 (+1 unfinished) |"), std::string::npos);
  fs::remove_all(dir);
}
