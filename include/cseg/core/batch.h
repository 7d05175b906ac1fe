#pragma once
/// A collated batch as the trainer and methods see it.
#include <torch/torch.h>

#include <string>
#include <vector>

namespace cseg {

struct Batch {
  torch::Tensor images;    ///< [N, 3, H, W] float32, normalised
  torch::Tensor labels;    ///< [N, H, W] int64; 0 background, 255 ignore; step labels (remapped)
  torch::Tensor saliency;  ///< [N, H, W] uint8 (> 0 salient) when the loader was asked for it
  torch::Tensor depth;     ///< [N, H, W] float metres (0 unknown) when the loader was asked for it
  /// Video, when the loader was asked for the next frame: its image [N, 3, H, W] (normalised),
  /// the flow to it [N, 2, H, W] (dx, dy pixels) and where the flow holds [N, H, W] bool.
  torch::Tensor next_images, flow, flow_valid;
  std::vector<std::string> ids;
  std::vector<size_t> indices;  ///< dataset indices of the images
  int64_t size() const { return images.size(0); }
  /// Moves every tensor to `device` (the loader collates on the CPU); no copy when already there.
  void to(const torch::Device& device) {
    for (auto* t : {&images, &labels, &saliency, &depth, &next_images, &flow, &flow_valid})
      if (t->defined()) *t = t->to(device);
  }
};

}  // namespace cseg
