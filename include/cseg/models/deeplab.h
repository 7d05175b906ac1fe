#pragma once
/// DeepLabV3 (Chen et al. 2017) and DeepLabV3+ (Chen et al. 2018) on a dilated ResNet.
///
/// Names mirror torchvision's deeplabv3_resnet* (backbone.*, classifier.0 = ASPP with
/// convs.0..4 and project, classifier.1/2 = 3x3 conv + norm, aux_classifier.0/1 = FCN head) so
/// its checkpoints load key for key; the last conv of each classifier becomes one head per step:
/// `classifier.heads.<k>` (torchvision: `classifier.4`) and `aux_classifier.heads.<k>`
/// (`aux_classifier.4`). DeepLabV3+ follows the widely used VainF/DeepLabV3Plus-Pytorch layout:
/// classifier.project (48-channel low-level reduction of layer1), classifier.aspp,
/// classifier.classifier.0/1 (3x3 fuse conv + norm), heads at `classifier.heads.<k>`
/// (reference: `classifier.classifier.3`).
///
/// Layout `mib` is the DeepLabV3 of the MiB/PLOP/SDR codebases (built on in-place ABN's): every
/// block of a dilated ResNet stage dilated alike, and a head without the 3x3 conv: four ASPP convs
/// (`classifier.map_convs.0..3`, rates 6/12/18 or 12/24/32) normalised together (`map_bn`) and
/// reduced to 256 channels (`red_conv`), plus the image-pooling branch (`global_pooling_conv`,
/// `global_pooling_bn`, `pool_red_conv`), summed and normalised (`red_bn`). Their checkpoints name
/// these `body.*`, `head.*` and `cls.<k>`; the weight importer maps them (weights/load.h).
///
/// Feature taps: "stem", "layer1".."layer4" (each stage before its final activation), "encoder"
/// (layer4 after it), "aspp" (ASPP output), "decoder" (input of the heads), "logits_lowres"
/// (logits before upsampling).
#include "cseg/models/resnet.h"
#include "cseg/models/segmenter.h"

namespace cseg::models {

/// Whose module layout (names and arithmetic) a DeepLabV3 follows.
enum class DeepLabLayout { torchvision, mib };
DeepLabLayout parse_deeplab_layout(const std::string& name);  ///< torchvision | mib

struct DeepLabOptions {
  std::vector<int> heads{21};
  int depth = 101;              ///< ResNet depth
  int output_stride = 16;       ///< 16 (dilate layer4) or 8 (dilate layer3 and layer4)
  std::vector<int> aspp_rates;  ///< empty: {6,12,18} at stride 16, {12,24,36} at stride 8
  Norm norm = Norm::bn;
  bool plus = false;                                  ///< DeepLabV3+ decoder with a low-level skip from layer1
  bool aux = false;                                   ///< FCN auxiliary head on layer3
  DeepLabLayout layout = DeepLabLayout::torchvision;  ///< mib: DeepLabV3 only (not plus)
  /// Layout mib at evaluation: the image-pooling branch averages windows of this many feature
  /// cells (MiB's --pooling, 32 there) instead of the whole map; 0 = the whole map, as in training.
  int eval_pooling = 0;
};

class DeepLab : public Segmenter {
 public:
  explicit DeepLab(DeepLabOptions options);
  ModelOutput forward(const torch::Tensor& x) override;
  torch::Tensor encode(const torch::Tensor& x) override;
  void add_head(int num_new) override;
  std::vector<int> head_sizes() const override { return options_.heads; }
  std::vector<torch::Tensor> encoder_parameters() override { return backbone_->parameters(); }
  std::shared_ptr<Segmenter> make_like() const override { return std::make_shared<DeepLab>(options_); }
  std::vector<std::string> backbone_prefixes() const override { return {"backbone."}; }
  std::vector<HeadAlias> head_aliases() const override;
  std::vector<std::string> stage_taps() const override { return {"layer1", "layer2", "layer3", "layer4", "decoder"}; }
  const DeepLabOptions& options() const { return options_; }

 private:
  DeepLabOptions options_;
  int decoder_channels_ = 256;
  ResNet backbone_{nullptr};
  std::shared_ptr<torch::nn::Module> classifier_;
  torch::nn::ModuleList heads_{nullptr};
  std::shared_ptr<torch::nn::Module> aux_classifier_;
  torch::nn::ModuleList aux_heads_{nullptr};
};

}  // namespace cseg::models
