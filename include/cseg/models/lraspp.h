#pragma once
/// LR-ASPP on MobileNetV3-Large (Howard et al., "Searching for MobileNetV3", ICCV 2019), as
/// torchvision's lraspp_mobilenet_v3_large builds it: the backbone's last stage dilated (output
/// stride 16), low-level features from the stride-8 block, and the lite head: a 1x1 conv-BN-ReLU
/// of the high-level map, gated by a sigmoid of its image-pooled 1x1 conv, upsampled to the
/// low-level map.
///
/// Names mirror torchvision's (backbone.0 .. backbone.16 = MobileNetV3's `features`, each inverted
/// residual's `block.<i>` with `fc1`/`fc2` for squeeze-excitation; classifier.cbr.0/1,
/// classifier.scale.1), so its checkpoints load key for key, and an ImageNet MobileNetV3-Large's
/// `features.*` load as the backbone (pretrained_mode: backbone). One change: torchvision's two
/// classifier convs, `classifier.low_classifier` (on the low-level map) and
/// `classifier.high_classifier` (on the gated high-level map), whose outputs it adds, are one 1x1
/// conv per step over the two maps concatenated, `classifier.heads.<k>`: the same logits
/// (weights side by side, biases added), and the one-conv-over-"decoder" form that SSUL, DKD and
/// BACS read. The weight importer joins them (Segmenter::HeadAlias::joined); the joined model has
/// one bias per class fewer than torchvision's.
///
/// No auxiliary head, BatchNorm only, and no dropout before the heads (model.dropout is unused),
/// as in torchvision. Feature taps: "low" (1/8, 40 ch), "high" (1/16, 960 ch; = "encoder"),
/// "decoder" (1/8, 40 + 128 ch, the heads' input), "logits_lowres" (1/8).
#include "cseg/models/layers.h"
#include "cseg/models/segmenter.h"

namespace cseg::models {

struct LrasppOptions {
  std::vector<int> heads{21};  ///< classes per step head
  int inter_channels = 128;    ///< width of the head's high-level branch (torchvision's default)
};

class Lraspp : public Segmenter {
 public:
  explicit Lraspp(LrasppOptions options);
  ModelOutput forward(const torch::Tensor& x) override;
  torch::Tensor encode(const torch::Tensor& x) override;
  void add_head(int num_new) override;
  std::vector<int> head_sizes() const override { return options_.heads; }
  std::vector<torch::Tensor> encoder_parameters() override { return backbone_->parameters(); }
  std::shared_ptr<Segmenter> make_like() const override { return std::make_shared<Lraspp>(options_); }
  std::vector<std::string> backbone_prefixes() const override { return {"backbone."}; }
  std::vector<HeadAlias> head_aliases() const override;
  std::vector<std::string> stage_taps() const override { return {"low", "high", "decoder"}; }

  static constexpr int kLowChannels = 40;    ///< output of backbone.4 (stride 8)
  static constexpr int kHighChannels = 960;  ///< output of backbone.16 (stride 16)

 private:
  /// The backbone's stride-8 map (the output of backbone.4) and its last map.
  std::pair<torch::Tensor, torch::Tensor> run_backbone(const torch::Tensor& x);

  LrasppOptions options_;
  Seq backbone_{nullptr};
  Seq cbr_{nullptr}, scale_{nullptr};
  torch::nn::ModuleList heads_{nullptr};
};

}  // namespace cseg::models
