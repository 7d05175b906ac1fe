#include "cseg/core/precision.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include "cseg/core/error.h"

namespace cseg::core {

const std::vector<std::string>& precision_names() {
  static const std::vector<std::string> names{"fp32", "bf16", "fp16"};
  return names;
}

AutocastPlan autocast_plan(const std::string& precision, bool cuda) {
  CSEG_CHECK(precision == "fp32" || precision == "bf16" || precision == "fp16",
             "precision '{}': expected fp32, bf16 or fp16", precision);
  CSEG_CHECK(precision != "fp16" || cuda,
             "precision fp16 (float16 autocast with loss scaling) needs a CUDA device; "
             "on the CPU use bf16");
  if (precision == "fp32") return {};
  return {true, cuda, precision == "fp16" ? "float16" : "bfloat16"};
}

namespace {
/// The switch and the dtype of one device kind's autocast. LibTorch 1.13 has a pair of
/// functions per kind; 2.x takes the device type (the 1.13 names are deprecated there).
struct AutocastControls {
  bool (*enabled)();
  void (*set_enabled)(bool);
  at::ScalarType (*dtype)();
  void (*set_dtype)(at::ScalarType);
};
const AutocastControls& controls(bool cuda) {
#if TORCH_VERSION_MAJOR >= 2
  static const AutocastControls cpu{[] { return at::autocast::is_autocast_enabled(at::kCPU); },
                                    [](bool on) { at::autocast::set_autocast_enabled(at::kCPU, on); },
                                    [] { return at::autocast::get_autocast_dtype(at::kCPU); },
                                    [](at::ScalarType t) { at::autocast::set_autocast_dtype(at::kCPU, t); }};
  static const AutocastControls gpu{[] { return at::autocast::is_autocast_enabled(at::kCUDA); },
                                    [](bool on) { at::autocast::set_autocast_enabled(at::kCUDA, on); },
                                    [] { return at::autocast::get_autocast_dtype(at::kCUDA); },
                                    [](at::ScalarType t) { at::autocast::set_autocast_dtype(at::kCUDA, t); }};
#else
  static const AutocastControls cpu{at::autocast::is_cpu_enabled, at::autocast::set_cpu_enabled,
                                    at::autocast::get_autocast_cpu_dtype, at::autocast::set_autocast_cpu_dtype};
  static const AutocastControls gpu{at::autocast::is_enabled, at::autocast::set_enabled,
                                    at::autocast::get_autocast_gpu_dtype, at::autocast::set_autocast_gpu_dtype};
#endif
  return cuda ? gpu : cpu;
}
}  // namespace

AutocastScope::AutocastScope(const std::string& precision, bool cuda) {
  const auto plan = autocast_plan(precision, cuda);
  if (!plan.active) return;
  active_ = true;
  cuda_ = plan.cuda;
  const auto& c = controls(cuda_);
  was_enabled_ = c.enabled();
  previous_dtype_ = static_cast<int>(c.dtype());
  c.set_dtype(plan.dtype == "float16" ? at::kHalf : at::kBFloat16);
  c.set_enabled(true);
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  // The cache holds low-precision copies of the weights made in this scope; they are stale once
  // the optimizer steps.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  const auto& c = controls(cuda_);
  c.set_enabled(was_enabled_);
  c.set_dtype(static_cast<at::ScalarType>(previous_dtype_));
}

}  // namespace cseg::core
