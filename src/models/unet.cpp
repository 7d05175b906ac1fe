#include "cseg/models/unet.h"

#include "cseg/core/error.h"

namespace nn = torch::nn;
namespace F = torch::nn::functional;

namespace cseg::models {

namespace {

/// (conv3x3 -> norm -> activation) x 2, as `double_conv.0..5`.
struct DoubleConvImpl : nn::Module {
  DoubleConvImpl(Norm norm, int in, int out, int mid) {
    Seq s(std::make_shared<SeqImpl>());
    s->push_back(conv2d(in, mid, 3, 1, 1));
    s->push_back(norm_layer(norm, mid));
    s->push_back(activation(norm));
    s->push_back(conv2d(mid, out, 3, 1, 1));
    s->push_back(norm_layer(norm, out));
    s->push_back(activation(norm));
    double_conv = register_module("double_conv", s);
  }
  torch::Tensor forward(const torch::Tensor& x) { return double_conv->forward(x); }
  Seq double_conv{nullptr};
};
TORCH_MODULE(DoubleConv);

/// Max-pool then DoubleConv, as `maxpool_conv.0/1`.
struct DownImpl : nn::Module {
  DownImpl(Norm norm, int in, int out) {
    maxpool_conv = register_module("maxpool_conv", seq(nn::MaxPool2d(2), DoubleConv(norm, in, out, out)));
  }
  torch::Tensor forward(const torch::Tensor& x) { return maxpool_conv->forward(x); }
  Seq maxpool_conv{nullptr};
};
TORCH_MODULE(Down);

/// Upsample the deeper map, pad it to the skip's size, concatenate, DoubleConv.
struct UpImpl : nn::Module {
  UpImpl(Norm norm, int in, int out, bool bilinear) : bilinear(bilinear) {
    if (bilinear) {
      conv = register_module("conv", DoubleConv(norm, in, out, in / 2));
    } else {
      up = register_module("up", ConvTranspose(nn::ConvTranspose2dOptions(in, in / 2, 2).stride(2)));
      conv = register_module("conv", DoubleConv(norm, in, out, out));
    }
  }
  torch::Tensor forward(const torch::Tensor& deep, const torch::Tensor& skip) {
    torch::Tensor x;
    if (bilinear) {
      x = F::interpolate(deep, F::InterpolateFuncOptions()
                                   .scale_factor(std::vector<double>{2.0, 2.0})
                                   .mode(torch::kBilinear)
                                   .align_corners(true));
    } else {
      x = up->forward(deep);
    }
    const int64_t dy = skip.size(2) - x.size(2), dx = skip.size(3) - x.size(3);
    if (dy != 0 || dx != 0) x = F::pad(x, F::PadFuncOptions({dx / 2, dx - dx / 2, dy / 2, dy - dy / 2}));
    return conv->forward(torch::cat({skip, x}, 1));
  }
  bool bilinear;
  ConvTranspose up{nullptr};
  DoubleConv conv{nullptr};
};
TORCH_MODULE(Up);

/// Holds the heads as `outc.heads` (reference: `outc.conv`).
struct OutConvImpl : nn::Module {};

}  // namespace

UNet::UNet(UNetOptions options) : options_(std::move(options)) {
  CSEG_CHECK(!options_.heads.empty(), "UNet needs at least one classifier head");
  CSEG_CHECK(options_.channels >= 2 && options_.channels % 2 == 0, "UNet channels must be even and >= 2, got {}",
             options_.channels);
  const int c = options_.channels, factor = options_.bilinear ? 2 : 1;
  const Norm n = options_.norm;
  down_.push_back(register_module("inc", DoubleConv(n, 3, c, c).ptr()));
  const int widths[5] = {c, 2 * c, 4 * c, 8 * c, 16 * c / factor};
  for (int k = 1; k <= 4; ++k)
    down_.push_back(register_module("down" + std::to_string(k), Down(n, widths[k - 1], widths[k]).ptr()));
  for (int k = 1; k <= 4; ++k) {
    const int in = (16 * c) >> (k - 1);
    const int out = k == 4 ? c : ((8 * c) >> (k - 1)) / factor;
    up_.push_back(register_module("up" + std::to_string(k), Up(n, in, out, options_.bilinear).ptr()));
  }
  auto outc = register_module("outc", std::make_shared<OutConvImpl>());
  heads_ = outc->register_module("heads", nn::ModuleList());
  for (int h : options_.heads) heads_->push_back(conv2d(c, h, 1, 1, 0, 1, 1, true));
  dropout_ = register_module("dropout", nn::Dropout(options_.dropout));
  if (options_.aux) {
    const int b = bottleneck_channels();
    aux_classifier_ = register_module("aux_classifier", conv_norm_act(n, b, b / 4, 3, 1, 1));
    aux_classifier_->push_back(nn::Dropout(0.1));
    aux_heads_ = aux_classifier_->register_module("heads", nn::ModuleList());
    for (int h : options_.heads) aux_heads_->push_back(conv2d(b / 4, h, 1, 1, 0, 1, 1, true));
  }
}

void UNet::add_head(int num_new) {
  CSEG_CHECK(num_new > 0, "a new head needs at least one class");
  options_.heads.push_back(num_new);
  heads_->push_back(conv2d(options_.channels, num_new, 1, 1, 0, 1, 1, true));
  if (options_.aux) aux_heads_->push_back(conv2d(bottleneck_channels() / 4, num_new, 1, 1, 0, 1, 1, true));
}

std::vector<Segmenter::HeadAlias> UNet::head_aliases() const { return {{"outc.conv", "outc.heads"}}; }

std::vector<torch::Tensor> UNet::encoder_parameters() {
  std::vector<torch::Tensor> out;
  for (auto& m : down_) {
    auto p = m->parameters();
    out.insert(out.end(), p.begin(), p.end());
  }
  return out;
}

ModelOutput UNet::forward(const torch::Tensor& x) {
  static const char* names[5] = {"inc", "down1", "down2", "down3", "down4"};
  ModelOutput out;
  std::vector<torch::Tensor> enc;
  enc.push_back(down_[0]->as<DoubleConvImpl>()->forward(x));
  for (int k = 1; k <= 4; ++k) enc.push_back(down_[k]->as<DownImpl>()->forward(enc.back()));
  auto y = enc[4];
  for (int k = 0; k < 4; ++k) y = up_[k]->as<UpImpl>()->forward(y, enc[3 - k]);
  out.logits = run_heads(heads_, dropout_->forward(y));
  if (options_.aux && is_training())
    out.aux_logits = resize_to(run_heads(aux_heads_, aux_classifier_->forward(enc[4])), x.size(2), x.size(3));
  if (feature_taps_) {
    for (int k = 0; k < 5; ++k) out.features[names[k]] = enc[k];
    out.features["decoder"] = y;
    out.features["encoder"] = enc[4];
    out.features["logits_lowres"] = out.logits;
  }
  return out;
}

}  // namespace cseg::models

namespace cseg::models {

torch::Tensor UNet::encode(const torch::Tensor& x) {
  auto y = down_[0]->as<DoubleConvImpl>()->forward(x);
  for (int k = 1; k <= 4; ++k) y = down_[k]->as<DownImpl>()->forward(y);
  return y;
}

}  // namespace cseg::models
