#include "cseg/core/precision.h"

#include <ATen/autocast_mode.h>

#include "cseg/core/error.h"

namespace cseg::core {

const std::vector<std::string>& precision_names() {
  static const std::vector<std::string> names{"fp32", "bf16", "fp16"};
  return names;
}

AutocastScope::AutocastScope(const std::string& precision) {
  CSEG_CHECK(precision == "fp32" || precision == "bf16" || precision == "fp16",
             "precision '{}': expected fp32, bf16 or fp16", precision);
  if (precision == "fp32") return;
  if (precision == "fp16") {  // CUDA autocast (config checks ask for device: cuda)
    gpu_ = true;
    was_enabled_ = at::autocast::is_enabled();
    previous_dtype_ = static_cast<int>(at::autocast::get_autocast_gpu_dtype());
    at::autocast::set_autocast_gpu_dtype(at::kHalf);
    at::autocast::set_enabled(true);
    at::autocast::increment_nesting();
    return;
  }
  active_ = true;
  was_enabled_ = at::autocast::is_cpu_enabled();
  previous_dtype_ = static_cast<int>(at::autocast::get_autocast_cpu_dtype());
  at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
  at::autocast::set_cpu_enabled(true);
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (gpu_) {
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_enabled(was_enabled_);
    at::autocast::set_autocast_gpu_dtype(static_cast<at::ScalarType>(previous_dtype_));
    return;
  }
  if (!active_) return;
  // The cache holds bfloat16 copies of the weights made in this scope; they are stale once the
  // optimizer steps.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_cpu_enabled(was_enabled_);
  at::autocast::set_autocast_cpu_dtype(static_cast<at::ScalarType>(previous_dtype_));
}

}  // namespace cseg::core
