#include "cseg/methods/state_archive.h"

#include <torch/torch.h>

#include <vector>

namespace cseg::methods {

void save_tensor_map(torch::serialize::OutputArchive& a, const std::string& prefix, const TensorMap& m) {
  std::string names;
  int i = 0;
  for (const auto& [k, t] : m) {
    names += k + "\n";
    a.write(prefix + "_" + std::to_string(i++), t);
  }
  a.write(prefix + "_names", torch::tensor(std::vector<uint8_t>(names.begin(), names.end()), torch::kUInt8));
}

void load_tensor_map(torch::serialize::InputArchive& a, const std::string& prefix, TensorMap& m) {
  m.clear();
  torch::Tensor names;
  if (!a.try_read(prefix + "_names", names)) return;
  std::string all(reinterpret_cast<const char*>(names.data_ptr<uint8_t>()), size_t(names.numel()));
  size_t start = 0;
  for (int i = 0; start < all.size(); ++i) {
    const size_t end = all.find('\n', start);
    torch::Tensor t;
    a.read(prefix + "_" + std::to_string(i), t);
    m[all.substr(start, end - start)] = t;
    start = end + 1;
  }
}

}  // namespace cseg::methods
