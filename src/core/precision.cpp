#include "cseg/core/precision.h"

#include <ATen/autocast_mode.h>

#include "cseg/core/error.h"

namespace cseg::core {

const std::vector<std::string>& precision_names() {
  static const std::vector<std::string> names{"fp32", "bf16", "fp16"};
  return names;
}

namespace {
/// LibTorch 1.13 keeps one autocast switch and dtype per device kind, each with its own functions.
struct AutocastControls {
  bool (*enabled)();
  void (*set_enabled)(bool);
  at::ScalarType (*dtype)();
  void (*set_dtype)(at::ScalarType);
};
const AutocastControls& controls(bool gpu) {
  static const AutocastControls cpu{at::autocast::is_cpu_enabled, at::autocast::set_cpu_enabled,
                                    at::autocast::get_autocast_cpu_dtype, at::autocast::set_autocast_cpu_dtype};
  static const AutocastControls cuda{at::autocast::is_enabled, at::autocast::set_enabled,
                                     at::autocast::get_autocast_gpu_dtype, at::autocast::set_autocast_gpu_dtype};
  return gpu ? cuda : cpu;
}
}  // namespace

AutocastScope::AutocastScope(const std::string& precision) {
  CSEG_CHECK(precision == "fp32" || precision == "bf16" || precision == "fp16",
             "precision '{}': expected fp32, bf16 or fp16", precision);
  if (precision == "fp32") return;
  active_ = true;
  gpu_ = precision == "fp16";  // CUDA autocast (the config asks for device: cuda with fp16)
  const auto& c = controls(gpu_);
  was_enabled_ = c.enabled();
  previous_dtype_ = static_cast<int>(c.dtype());
  c.set_dtype(gpu_ ? at::kHalf : at::kBFloat16);
  c.set_enabled(true);
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  // The cache holds low-precision copies of the weights made in this scope; they are stale once
  // the optimizer steps.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  const auto& c = controls(gpu_);
  c.set_enabled(was_enabled_);
  c.set_dtype(static_cast<at::ScalarType>(previous_dtype_));
}

}  // namespace cseg::core
