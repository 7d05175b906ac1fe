#include "cseg/adaptation/novelty.h"

#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "cseg/core/error.h"

namespace cseg::adaptation {

torch::Tensor mean_normalised_entropy(const torch::Tensor& logits) {
  CSEG_CHECK(logits.dim() == 4 && logits.size(1) >= 2,
             "entropy: expected logits [N, C, H, W] with C >= 2, got {} dimensions ({} channels)", logits.dim(),
             logits.dim() > 1 ? logits.size(1) : 0);
  torch::NoGradGuard no_grad;
  auto log_p = torch::log_softmax(logits.to(torch::kFloat), 1);
  auto entropy = -(log_p.exp() * log_p).sum(1);  // [N, H, W]
  return entropy.mean({1, 2}) / std::log(static_cast<double>(logits.size(1)));
}

EnvironmentChangeDetector::EnvironmentChangeDetector(ChangeDetectorOptions o) : options_(o) {
  CSEG_CHECK(o.window >= 2 && o.min_history >= 2 && o.min_history <= o.window,
             "change detector: need 2 <= min_history <= window (got min_history {}, window {})", o.min_history,
             o.window);
  CSEG_CHECK(o.patience >= 1 && o.patience <= o.window, "change detector: patience must be in [1, window] (got {})",
             o.patience);
  CSEG_CHECK(o.sigmas >= 0 && o.min_rise >= 0, "change detector: sigmas and min_rise must be >= 0");
}

double EnvironmentChangeDetector::threshold() const {
  if (static_cast<int>(baseline_.size()) < options_.min_history) return std::numeric_limits<double>::infinity();
  double mean = 0, var = 0;
  for (double v : baseline_) mean += v;
  mean /= static_cast<double>(baseline_.size());
  for (double v : baseline_) var += (v - mean) * (v - mean);
  const double std = std::sqrt(var / static_cast<double>(baseline_.size() - 1));
  return mean + std::max(options_.sigmas * std, options_.min_rise);
}

bool EnvironmentChangeDetector::update(double u) {
  CSEG_CHECK(std::isfinite(u), "change detector: uncertainty {} is not a finite number", u);
  if (u > threshold()) {
    pending_.push_back(u);
    if (static_cast<int>(pending_.size()) < options_.patience) return false;
    // A change: the frames that showed it start the new environment's baseline.
    baseline_.assign(pending_.begin(), pending_.end());
    pending_.clear();
    ++changes_;
    return true;
  }
  // A usual frame: a short run of unusual ones before it was a glitch, and is dropped.
  pending_.clear();
  baseline_.push_back(u);
  if (static_cast<int>(baseline_.size()) > options_.window) baseline_.pop_front();
  return false;
}

std::vector<double> feature_shift(const torch::Tensor& known, const torch::Tensor& frames) {
  CSEG_CHECK(known.dim() == 2 && frames.dim() == 2 && known.size(1) == frames.size(1) && known.size(0) >= 2,
             "feature shift: expected known [m >= 2, D] and frames [n, D] features, got {} and {}",
             fmt::format("{}", known.sizes()), fmt::format("{}", frames.sizes()));
  torch::NoGradGuard no_grad;
  const auto k = known.to(torch::kDouble), f = frames.to(torch::kDouble);
  const auto mean = k.mean(0), std = k.std(0).clamp_min(1e-6);  // a constant channel cannot vary
  const auto z = ((f - mean) / std).pow(2).mean(1).sqrt().contiguous();
  return std::vector<double>(z.data_ptr<double>(), z.data_ptr<double>() + z.numel());
}

ArrivalDetection locate_arrival(const std::vector<double>& history, const std::vector<double>& arriving,
                                const ChangeDetectorOptions& options) {
  EnvironmentChangeDetector detector(options);
  ArrivalDetection a;
  const auto mean = [](const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return v.empty() ? 0.0 : s / double(v.size());
  };
  a.history_mean = mean(history);
  a.arriving_mean = mean(arriving);
  for (double u : history) a.false_alarms += detector.update(u) ? 1 : 0;
  for (size_t i = 0; i < arriving.size(); ++i) {
    if (!detector.update(arriving[i])) continue;
    if (a.detected_at < 0)
      a.detected_at = int(i);
    else
      ++a.false_alarms;
  }
  return a;
}

}  // namespace cseg::adaptation
