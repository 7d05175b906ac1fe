#pragma once
/// Dynamic loss scaling for fp16 training (what torch.cuda.amp.GradScaler does; LibTorch 1.13's
/// C++ API has none). fp16 gradients underflow to zero below 6e-8, so the loss is multiplied by a
/// large scale before backward; before the optimizer step the gradients are divided back. A step
/// whose gradients hold inf or NaN is skipped and the scale shrinks; after `growth_interval` good
/// steps in a row it grows. Plain tensor ops: works on any device (tested on the CPU).
#include <torch/torch.h>

#include <vector>

namespace cseg::core {

class GradScaler {
 public:
  struct Options {
    double init_scale = 65536.0;  ///< 2^16, as PyTorch
    double growth_factor = 2.0;
    double backoff_factor = 0.5;
    int growth_interval = 2000;  ///< good steps before the scale grows
  };
  explicit GradScaler(Options options) : o_(options), scale_(options.init_scale) {}
  GradScaler() : GradScaler(Options{}) {}

  /// loss * scale: call backward on this.
  torch::Tensor scale(const torch::Tensor& loss) const { return loss * scale_; }
  /// Divides every defined gradient of `params` by the scale. Returns true when all of them are
  /// finite (the optimizer may step); false: skip this step.
  bool unscale(const std::vector<torch::Tensor>& params) const;
  /// After each iteration, with what unscale returned: shrink on overflow, grow after a run of
  /// good steps.
  void update(bool finite);
  double current() const { return scale_; }
  int64_t skipped() const { return skipped_; }

  /// What a checkpoint keeps, so a resumed step goes on with the scale it had reached rather
  /// than overflowing its way down from 2^16 again.
  struct State {
    double scale = 0;
    int good_steps = 0;   ///< good steps since the scale last changed
    int64_t skipped = 0;  ///< overflowing steps skipped so far
  };
  State state() const { return {scale_, good_steps_, skipped_}; }
  void restore(const State& s) {
    scale_ = s.scale;
    good_steps_ = s.good_steps;
    skipped_ = s.skipped;
  }

 private:
  Options o_;
  double scale_;
  int good_steps_ = 0;
  int64_t skipped_ = 0;
};

}  // namespace cseg::core
