#pragma once
/// Whether a difference between two methods exceeds seed noise: Student's t-tests over the
/// per-seed scores of runs. Two methods run with the same seeds (the same step-0 model, data
/// order and augmentation) are compared pair by pair (paired t-test on the per-seed
/// differences); otherwise by Welch's unequal-variance t-test. Two-sided; `p < alpha` (0.05 by
/// default) counts as significant, per comparison, without correction for the many comparisons
/// of a table (docs/method_comparison.md says so beside the table).
#include <map>
#include <vector>

namespace cseg::metrics {

struct TTest {
  double difference = 0;  ///< mean(a) - mean(b) (paired: the mean of the per-seed differences)
  double t = 0;           ///< the t statistic (+-inf when the differences have no spread)
  double df = 0;          ///< degrees of freedom
  double p = 1;           ///< two-sided p-value; 1 when the test is undefined (too few runs)
  int n = 0;              ///< pairs (paired) or the smaller sample (Welch)
  bool paired = false;
  bool significant(double alpha = 0.05) const { return p < alpha; }
};

/// P(|T| >= |t|) for Student's t with `df` > 0 degrees of freedom.
double student_t_two_sided_p(double t, double df);

/// Paired t-test of a[i] - b[i]; needs a.size() == b.size() >= 2.
TTest paired_t_test(const std::vector<double>& a, const std::vector<double>& b);

/// Welch's t-test of two samples of at least two values each.
TTest welch_t_test(const std::vector<double>& a, const std::vector<double>& b);

/// Per-seed scores of two methods (seed -> score): paired over the seeds both have when there
/// are at least two, else Welch over all of each. p = 1 when neither is defined.
TTest compare_seeds(const std::map<int, double>& a, const std::map<int, double>& b);

}  // namespace cseg::metrics
