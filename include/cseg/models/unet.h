#pragma once
/// UNet (Ronneberger et al. 2015) with batch normalisation. Names mirror the widely used
/// milesial/Pytorch-UNet (inc, down1..4 with maxpool_conv, up1..4 with up and conv, each
/// DoubleConv as double_conv.0..5), so its checkpoints load key for key; its last conv `outc.conv`
/// becomes one head per step, `outc.heads.<k>`.
///
/// Upsampling is bilinear + convolution by default (transposed convolution is slow in the CPU
/// LibTorch build); `transposed` restores the original ConvTranspose2d. With bilinear upsampling
/// the bottleneck has half the channels, as in the reference.
///
/// Feature taps: "inc", "down1".."down4" (encoder outputs; "encoder" = down4), "decoder" (input
/// of the heads), "logits_lowres" (= the logits: UNet predicts at full resolution).
#include "cseg/models/layers.h"
#include "cseg/models/segmenter.h"

namespace cseg::models {

struct UNetOptions {
  std::vector<int> heads{21};
  int channels = 64;     ///< width of the first level (doubles at each of the 4 downsamplings)
  bool bilinear = true;  ///< bilinear upsampling + conv; false: ConvTranspose2d
  Norm norm = Norm::bn;
  bool aux = false;      ///< auxiliary FCN head on the bottleneck
  double dropout = 0.0;  ///< dropout before the heads
};

class UNet : public Segmenter {
 public:
  explicit UNet(UNetOptions options);
  ModelOutput forward(const torch::Tensor& x) override;
  torch::Tensor encode(const torch::Tensor& x) override;
  void add_head(int num_new) override;
  std::vector<int> head_sizes() const override { return options_.heads; }
  std::vector<torch::Tensor> encoder_parameters() override;
  std::shared_ptr<Segmenter> make_like() const override { return std::make_shared<UNet>(options_); }
  std::vector<std::string> backbone_prefixes() const override {
    return {"inc.", "down1.", "down2.", "down3.", "down4."};
  }
  std::vector<HeadAlias> head_aliases() const override;
  std::vector<std::string> stage_taps() const override {
    return {"inc", "down1", "down2", "down3", "down4", "decoder"};
  }

 private:
  int bottleneck_channels() const { return options_.channels * 16 / (options_.bilinear ? 2 : 1); }
  UNetOptions options_;
  std::vector<std::shared_ptr<torch::nn::Module>> down_, up_;  // inc, down1..4 / up1..4
  torch::nn::ModuleList heads_{nullptr};
  torch::nn::Dropout dropout_{nullptr};
  Seq aux_classifier_{nullptr};
  torch::nn::ModuleList aux_heads_{nullptr};
};

}  // namespace cseg::models
