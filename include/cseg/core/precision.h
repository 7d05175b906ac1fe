#pragma once
/// Mixed precision for the training forward pass.
#include <string>
#include <vector>

namespace cseg::core {

/// The precisions `train.precision` accepts.
const std::vector<std::string>& precision_names();

/// While alive, runs the forward pass in `precision`: "fp32" changes nothing; "bf16" turns on
/// LibTorch's CPU autocast with bfloat16 (as torch.autocast("cpu", dtype=torch.bfloat16)):
/// convolutions and matrix products compute in bfloat16; the rest follows its inputs (in
/// LibTorch 1.13 batch norm, resizing, softmax and log-softmax of bfloat16 maps stay bfloat16),
/// which is why the trainer hands the losses float logits (engine/trainer.cpp). Weights,
/// gradients and the optimizer stay float32, so no loss scaling is needed (bfloat16 has
/// float32's exponent range). "fp16" turns on LibTorch's CUDA autocast with float16 (a CUDA
/// build and `device: cuda` only; never run here, no GPU): float16's narrow range needs the
/// trainer's loss scaling (core/grad_scaler.h). Backward runs after the scope ends, in the dtypes
/// the forward pass recorded.
class AutocastScope {
 public:
  explicit AutocastScope(const std::string& precision);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_ = false;
  bool gpu_ = false;
  bool was_enabled_ = false;
  int previous_dtype_ = 0;
};

}  // namespace cseg::core
