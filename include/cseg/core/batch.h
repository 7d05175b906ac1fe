#pragma once
/// A collated batch as the trainer and methods see it.
#include <torch/torch.h>

#include <string>
#include <vector>

namespace cseg {

struct Batch {
  torch::Tensor images;  ///< [N, 3, H, W] float32, normalised
  torch::Tensor labels;  ///< [N, H, W] int64; 0 background, 255 ignore; step labels (remapped)
  torch::Tensor saliency;  ///< [N, H, W] uint8 (> 0 salient) when the loader was asked for it
  std::vector<std::string> ids;
  std::vector<size_t> indices;  ///< dataset indices of the images
  int64_t size() const { return images.size(0); }
};

}  // namespace cseg
