#pragma once
// The tensors tools/make_method_fixtures.py wrote from a Python restatement of a method's
// reference code (tests/files/methods/FILE), read by key.
#include <memory>
#include <stdexcept>
#include <string>

#include "cseg/weights/torch_file.h"

namespace cseg::test {

class MethodFixture {
 public:
  explicit MethodFixture(std::string file)
      : file_(std::move(file)),
        root_(weights::read_torch_file(std::string(CSEG_SOURCE_DIR) + "/tests/files/methods/" + file_)) {}
  torch::Tensor operator[](const std::string& key) const {
    const auto* v = root_->get(key);
    if (!v) throw std::runtime_error(file_ + " has no '" + key + "' (rerun tools/make_method_fixtures.py)");
    return v->tensor;
  }

 private:
  std::string file_;
  weights::PyValuePtr root_;
};

}  // namespace cseg::test
