#pragma once
/// A one-channel 1x1 conv on a model's "decoder" tap that a method owns and trains with the model
/// (SSUL's unknown class, BACS's background detector): created for the decoder's width, listed
/// in Method::parameters, saved with the method's state.
#include <torch/torch.h>

#include <string>

#include "cseg/models/segmenter.h"

namespace cseg::methods {

struct DecoderHead {
  torch::Tensor weight;  ///< [1, D, 1, 1]
  torch::Tensor bias;    ///< [1]

  bool defined() const { return weight.defined(); }
  /// Creates the head for `model`'s decoder width (one small forward) unless it exists; returns
  /// the width.
  int64_t ensure(models::Segmenter& model);
  /// The head's logit map [N, 1, h, w] on decoder features [N, D, h, w].
  torch::Tensor operator()(const torch::Tensor& features) const;
  /// Archive keys <name>_weight and <name>_bias.
  void save(torch::serialize::OutputArchive& a, const std::string& name) const;
  /// Loads in place when the head exists with the same shape (a step's optimizer may already hold
  /// these tensors on a mid-step resume). False when the archive has no such head.
  bool load(torch::serialize::InputArchive& a, const std::string& name);
};

}  // namespace cseg::methods
