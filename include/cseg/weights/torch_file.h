#pragma once
/// Reads files written by Python's `torch.save`, both the zip format (PyTorch >= 1.6) and the
/// legacy sequential format (older releases, e.g. the Fast-SCNN reference's Cityscapes weights).
///
/// LibTorch's own `torch::pickle_load` refuses `collections.OrderedDict`, which is what
/// `model.state_dict()` returns, so cseg carries a small unpickler of its own. It understands the
/// pickle opcodes that `torch.save` emits (protocols 2-4) and rebuilds tensors from their storages;
/// any other Python object (an argparse.Namespace in a training checkpoint, say) becomes an opaque
/// `Object` value instead of an error, so the tensors around it can still be read.
#include <torch/torch.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace cseg::weights {

struct PyValue;
using PyValuePtr = std::shared_ptr<PyValue>;

/// One unpickled Python value.
struct PyValue {
  enum class Kind { None, Bool, Int, BigInt, Float, String, Bytes, Tuple, List, Dict, Tensor, Storage, Global, Object };
  Kind kind = Kind::None;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;                                        ///< String, Bytes, BigInt (raw bytes), Global ("module.name")
  std::vector<PyValuePtr> items;                        ///< Tuple, List; Object: [callable, args...]
  std::vector<std::pair<PyValuePtr, PyValuePtr>> dict;  ///< Dict entries in insertion order
  torch::Tensor tensor;                                 ///< Tensor; Storage: flat 1-D tensor (filled lazily)

  bool is_string() const { return kind == Kind::String; }
  /// The value under string key `key` of a Dict, or nullptr.
  const PyValue* get(const std::string& key) const;
};

/// Reads a `torch.save` file. Throws cseg::Error naming the file on any malformed or unsupported
/// content (e.g. the pre-2018 tar format or quantized tensors).
PyValuePtr read_torch_file(const std::string& path);

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

/// The state dict inside a loaded file: the root itself if it maps names to tensors, else the
/// first of the usual wrapper keys (state_dict, model_state, model, net, module, params) that
/// does. `where` receives a description ("root" or "key 'model_state'"). Nested dicts of tensors
/// are flattened with '.' separators. Throws naming `path` when no state dict is found.
NamedTensors find_state_dict(const PyValue& root, const std::string& path, std::string* where = nullptr);

}  // namespace cseg::weights
