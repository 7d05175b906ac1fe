#include "cseg/metrics/continual.h"

#include <algorithm>

namespace cseg::metrics {

std::vector<std::optional<double>> forgetting(const AccuracyMatrix& r) {
  if (r.empty()) return {};
  const size_t last = r.size() - 1;
  std::vector<std::optional<double>> out(r[last].size());
  for (size_t j = 0; j < out.size() && j < last; ++j) {
    std::optional<double> best;
    for (size_t i = 0; i < last; ++i)
      if (j < r[i].size() && r[i][j]) best = best ? std::max(*best, *r[i][j]) : *r[i][j];
    if (best && r[last][j]) out[j] = *best - *r[last][j];
  }
  return out;
}

std::optional<double> backward_transfer(const AccuracyMatrix& r) {
  if (r.size() < 2) return std::nullopt;
  const size_t last = r.size() - 1;
  double sum = 0;
  int n = 0;
  for (size_t j = 0; j < last; ++j)
    if (j < r[j].size() && r[j][j] && r[last][j]) {
      sum += *r[last][j] - *r[j][j];
      ++n;
    }
  if (n == 0) return std::nullopt;
  return sum / n;
}

std::optional<double> final_average(const AccuracyMatrix& r) {
  if (r.empty()) return std::nullopt;
  double sum = 0;
  int n = 0;
  for (const auto& v : r.back())
    if (v) {
      sum += *v;
      ++n;
    }
  if (n == 0) return std::nullopt;
  return sum / n;
}

std::optional<double> forward_transfer(const AccuracyMatrix& r, const std::vector<std::optional<double>>& initial) {
  double sum = 0;
  int n = 0;
  for (size_t j = 1; j < r.size() && j < initial.size(); ++j)
    if (j < r[j - 1].size() && r[j - 1][j] && initial[j]) sum += *r[j - 1][j] - *initial[j], ++n;
  return n ? std::optional<double>(sum / n) : std::nullopt;
}

}  // namespace cseg::metrics
