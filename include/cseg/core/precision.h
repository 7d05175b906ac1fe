#pragma once
/// Mixed precision for the training forward pass.
#include <string>
#include <vector>

namespace cseg::core {

/// The precisions `train.precision` accepts.
const std::vector<std::string>& precision_names();

/// Which autocast a precision turns on for a device: none (fp32), or the CPU's or CUDA's with
/// bfloat16 / float16. fp16 on the CPU is an error (the CPU's half-precision type is bf16).
struct AutocastPlan {
  bool active = false;
  bool cuda = false;
  std::string dtype;  ///< "bfloat16" or "float16"
};
AutocastPlan autocast_plan(const std::string& precision, bool cuda);

/// While alive, runs the forward pass in `precision` on the model's device (`cuda`: a CUDA device,
/// else the CPU): "fp32" changes nothing; "bf16" turns on that device's autocast with bfloat16
/// (as torch.autocast("cpu" or "cuda", dtype=torch.bfloat16)):
/// convolutions and matrix products compute in bfloat16; the rest follows its inputs (in
/// LibTorch 1.13 batch norm, resizing, softmax and log-softmax of bfloat16 maps stay bfloat16),
/// which is why the trainer hands the losses float logits (models::float_logits, called in
/// engine/iteration.cpp). Weights, gradients and the optimizer stay float32, so no loss scaling
/// is needed (bfloat16 has float32's exponent range). "fp16" turns on LibTorch's CUDA autocast
/// with float16 (a CUDA build and `device: cuda` only; never run here, no GPU): float16's narrow
/// range needs the trainer's loss scaling (core/grad_scaler.h). Backward runs after the scope
/// ends, in the dtypes the forward pass recorded.
class AutocastScope {
 public:
  AutocastScope(const std::string& precision, bool cuda);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_ = false;
  bool cuda_ = false;
  bool was_enabled_ = false;
  int previous_dtype_ = 0;
};

}  // namespace cseg::core
