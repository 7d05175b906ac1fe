#include "cseg/metrics/significance.h"

#include <cmath>
#include <limits>

#include "cseg/core/error.h"

namespace cseg::metrics {

namespace {

/// The continued fraction of the regularised incomplete beta function I_x(a, b), evaluated with
/// the modified Lentz method; converges quickly for x < (a + 1) / (a + b + 2).
double beta_fraction(double a, double b, double x) {
  constexpr double tiny = 1e-300, eps = 1e-15;
  double c = 1, d = 1 - (a + b) * x / (a + 1);
  if (std::fabs(d) < tiny) d = tiny;
  d = 1 / d;
  double h = d;
  for (int m = 1; m <= 500; ++m) {
    // Even term d_{2m}, then odd term d_{2m+1} of the fraction.
    const double even = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m));
    d = 1 + even * d;
    c = 1 + even / c;
    if (std::fabs(d) < tiny) d = tiny;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    const double odd = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1));
    d = 1 + odd * d;
    c = 1 + odd / c;
    if (std::fabs(d) < tiny) d = tiny;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1 / d;
    const double step = d * c;
    h *= step;
    if (std::fabs(step - 1) < eps) break;
  }
  return h;
}

/// The regularised incomplete beta function I_x(a, b), 0 <= x <= 1.
double incomplete_beta(double a, double b, double x) {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const double front =
      std::exp(std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x));
  if (x < (a + 1) / (a + b + 2)) return front * beta_fraction(a, b, x) / a;
  return 1 - front * beta_fraction(b, a, 1 - x) / b;  // symmetry: I_x(a,b) = 1 - I_{1-x}(b,a)
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / double(v.size());
}

double sample_variance(const std::vector<double>& v, double m) {
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return s / double(v.size() - 1);
}

}  // namespace

double student_t_two_sided_p(double t, double df) {
  CSEG_CHECK(df > 0, "student_t_two_sided_p: degrees of freedom must be > 0 (got {})", df);
  if (std::isnan(t)) return 1;
  if (std::isinf(t)) return 0;
  // P(|T| >= |t|) = I_{df / (df + t^2)}(df / 2, 1 / 2).
  return incomplete_beta(df / 2, 0.5, df / (df + t * t));
}

TTest paired_t_test(const std::vector<double>& a, const std::vector<double>& b) {
  CSEG_CHECK(a.size() == b.size() && a.size() >= 2,
             "paired t-test: needs two samples of equal size >= 2 (got {} and {})", a.size(), b.size());
  std::vector<double> d(a.size());
  for (size_t i = 0; i < a.size(); ++i) d[i] = a[i] - b[i];
  TTest r;
  r.paired = true;
  r.n = int(d.size());
  r.df = double(d.size() - 1);
  r.difference = mean(d);
  const double se = std::sqrt(sample_variance(d, r.difference) / double(d.size()));
  if (se == 0) {
    r.t = r.difference == 0 ? 0 : std::copysign(std::numeric_limits<double>::infinity(), r.difference);
    r.p = r.difference == 0 ? 1 : 0;
    return r;
  }
  r.t = r.difference / se;
  r.p = student_t_two_sided_p(r.t, r.df);
  return r;
}

TTest welch_t_test(const std::vector<double>& a, const std::vector<double>& b) {
  CSEG_CHECK(a.size() >= 2 && b.size() >= 2, "Welch t-test: needs at least two values per sample (got {} and {})",
             a.size(), b.size());
  TTest r;
  r.n = int(std::min(a.size(), b.size()));
  const double ma = mean(a), mb = mean(b);
  r.difference = ma - mb;
  const double va = sample_variance(a, ma) / double(a.size()), vb = sample_variance(b, mb) / double(b.size());
  const double se2 = va + vb;
  if (se2 == 0) {
    r.t = r.difference == 0 ? 0 : std::copysign(std::numeric_limits<double>::infinity(), r.difference);
    r.p = r.difference == 0 ? 1 : 0;
    r.df = double(a.size() + b.size() - 2);
    return r;
  }
  r.t = r.difference / std::sqrt(se2);
  // Welch-Satterthwaite degrees of freedom.
  r.df = se2 * se2 / (va * va / double(a.size() - 1) + vb * vb / double(b.size() - 1));
  r.p = student_t_two_sided_p(r.t, r.df);
  return r;
}

TTest compare_seeds(const std::map<int, double>& a, const std::map<int, double>& b) {
  std::vector<double> pa, pb, all_a, all_b;
  for (const auto& [seed, v] : a) {
    if (std::isnan(v)) continue;
    all_a.push_back(v);
    auto it = b.find(seed);
    if (it != b.end() && !std::isnan(it->second)) pa.push_back(v), pb.push_back(it->second);
  }
  for (const auto& [seed, v] : b)
    if (!std::isnan(v)) all_b.push_back(v);
  if (pa.size() >= 2) return paired_t_test(pa, pb);
  if (all_a.size() >= 2 && all_b.size() >= 2) return welch_t_test(all_a, all_b);
  TTest r;
  if (!all_a.empty() && !all_b.empty()) r.difference = mean(all_a) - mean(all_b);
  return r;
}

}  // namespace cseg::metrics
