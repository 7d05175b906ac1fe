#pragma once
/// ResNet (He et al. 2016; torchvision's v1.5 with the stride on the 3x3 conv), with optional
/// dilation in the last stages for dense prediction. Module and parameter names are torchvision's
/// (conv1, bn1, layer1..4 with blocks 0..n-1 holding conv1/bn1/.../downsample, fc), so an ImageNet
/// state dict loads key for key.
#include <array>

#include "cseg/models/layers.h"

namespace cseg::models {

struct ResNetOptions {
  int depth = 50;                ///< 18, 34, 50, 101 or 152
  std::array<bool, 3> dilate{};  ///< replace the stride of layer2/3/4 by dilation
  Norm norm = Norm::bn;
  int num_classes = 0;  ///< > 0: keep avgpool + fc (classification); 0: backbone only
  /// A dilated stage's first block: false keeps the previous stage's rate there (torchvision's
  /// replace_stride_with_dilation); true dilates every block of the stage alike, as the in-place
  /// ABN ResNet of the MiB/PLOP/SDR codebases does (DeepLab layout mib).
  bool dilate_first_block = false;
};

/// Each stage's output before its final activation (the block sum, as PLOP/MiB's attention maps)
/// and after it.
struct ResNetFeatures {
  torch::Tensor stem;                ///< after conv1/bn1/act/maxpool, 1/4
  std::array<torch::Tensor, 4> pre;  ///< layer1..4 before the last activation
  std::array<torch::Tensor, 4> out;  ///< layer1..4 outputs
};

/// A residual block: forward_preact returns the sum (residual + shortcut) before activation.
struct ResBlockImpl : torch::nn::Module {
  virtual torch::Tensor forward_preact(const torch::Tensor& x) = 0;
  torch::Tensor forward(const torch::Tensor& x) { return activate(norm, forward_preact(x)); }
  Norm norm = Norm::bn;
};

class ResNetImpl : public torch::nn::Module {
 public:
  explicit ResNetImpl(ResNetOptions options);
  /// taps = false (inference): `pre` stays undefined and activations run in place, so no stage
  /// keeps its pre-activation sum.
  ResNetFeatures features(const torch::Tensor& x, bool taps = true);
  /// Classification logits (needs num_classes > 0).
  torch::Tensor forward(const torch::Tensor& x);
  /// Output channels of layer1..4 (64..512 x expansion).
  std::array<int, 4> channels() const { return channels_; }
  const ResNetOptions& options() const { return options_; }

 private:
  ResNetOptions options_;
  std::array<int, 4> channels_{};
  Conv conv1_{nullptr};
  torch::nn::AnyModule bn1_;
  std::array<std::vector<std::shared_ptr<ResBlockImpl>>, 4> layers_;
  Linear fc_{nullptr};
};
TORCH_MODULE(ResNet);

/// "resnet50" -> 50; throws naming the value for anything else.
int parse_resnet_depth(const std::string& name);

}  // namespace cseg::models
