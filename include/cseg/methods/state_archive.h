#pragma once
/// Named tensors in a method's checkpoint state (Method::save / load): the regularisers'
/// importance and anchors, CoTTA's teacher and source weights.
#include <torch/serialize.h>

#include <map>
#include <string>

namespace cseg::methods {

using TensorMap = std::map<std::string, torch::Tensor>;

/// Writes `m` under `prefix` (archive keys must be identifiers: the tensors go under
/// <prefix>_<i>, their names in one uint8 tensor <prefix>_names, newline-separated).
void save_tensor_map(torch::serialize::OutputArchive& archive, const std::string& prefix, const TensorMap& m);
/// Reads what save_tensor_map wrote under `prefix`; an archive without it leaves `m` empty.
void load_tensor_map(torch::serialize::InputArchive& archive, const std::string& prefix, TensorMap& m);

}  // namespace cseg::methods
