#pragma once
// The weight-parity fixtures of tests/files/weights/, written by tools/make_weight_fixtures.py:
// a reference implementation's keys and shapes, its output for a stored input, and the
// deterministic values (`synth`) both sides compute for every key.
#include <torch/torch.h>

#include <cmath>
#include <string>

#include "cseg/weights/torch_file.h"

namespace cseg::test {

inline std::string fixture(const std::string& name) {
  return std::string(CSEG_SOURCE_DIR) + "/tests/files/weights/" + name;
}

/// The deterministic weights of tools/make_weight_fixtures.py (`synth`), in exact integer
/// arithmetic so both sides agree to the last bit.
inline torch::Tensor synth(const std::string& name, c10::IntArrayRef shape) {
  auto ends_with = [&](const std::string& suffix) {
    return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (ends_with("num_batches_tracked")) return torch::tensor(int64_t(0));
  const int64_t m32 = int64_t(1) << 32;
  uint32_t h = 0x811C9DC5u;
  for (unsigned char c : name) h = (h ^ c) * 0x01000193u;
  int64_t n = 1;
  for (auto s : shape) n *= s;
  auto x = torch::remainder(torch::arange(n, torch::kLong) * 40503 + int64_t(h), m32);
  x = torch::bitwise_xor(x, x.__rshift__(15));
  x = torch::remainder(x * 1664525 + 1013904223, m32);
  x = torch::bitwise_xor(x, x.__rshift__(13));
  x = torch::remainder(x * 22695477 + 1, m32);
  auto u = x.to(torch::kDouble) / double(m32) - 0.5;
  torch::Tensor v;
  if (ends_with("running_var"))
    v = 1.0 + (u + 0.5);
  else if (ends_with("running_mean"))
    v = 0.2 * u;
  else if (shape.size() == 1 && ends_with("weight"))
    v = 0.85 + 0.4 * u;
  else if (ends_with("bias"))
    v = 0.02 * u;
  else
    v = u * std::sqrt(12.0 * 2.0 / double(n / shape[0]));
  return v.to(torch::kFloat).reshape(shape);
}

struct Parity {
  torch::Tensor input, output;
  weights::NamedTensors state;  ///< the reference's keys with synthetic values
};

/// The state dict in `value` (a shapes-only one: stride-0 views) with synth values.
inline weights::NamedTensors synth_state(const weights::PyValue& value, const std::string& name) {
  weights::NamedTensors state;
  for (auto& [k, t] : weights::find_state_dict(value, name)) state.emplace_back(k, synth(k, t.sizes()));
  return state;
}

/// tests/files/weights/parity_<name>.pt with its state's values filled in by synth.
inline Parity read_parity(const std::string& name) {
  auto root = weights::read_torch_file(fixture("parity_" + name + ".pt"));
  return {root->get("input")->tensor, root->get("output")->tensor, synth_state(*root->get("state"), name)};
}

/// tests/files/weights/<file>, a shapes-only state dict, with synth values.
inline weights::NamedTensors read_synth_state(const std::string& file) {
  return synth_state(*weights::read_torch_file(fixture(file)), file);
}

inline double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>();
}

}  // namespace cseg::test
