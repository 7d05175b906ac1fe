#include "cseg/models/lraspp.h"

namespace nn = torch::nn;
namespace F = torch::nn::functional;

namespace cseg::models {

namespace {

// LibTorch 1.13 has the functions but no modules for the hard activations.
struct HardswishImpl : nn::Module {
  torch::Tensor forward(const torch::Tensor& x) { return torch::hardswish(x); }
};
TORCH_MODULE(Hardswish);

struct HardsigmoidImpl : nn::Module {
  torch::Tensor forward(const torch::Tensor& x) { return torch::hardsigmoid(x); }
};
TORCH_MODULE(Hardsigmoid);

enum class Act { none, relu, hardswish };

/// torchvision's Conv2dNormActivation: conv (no bias, "same" padding) -> BatchNorm (MobileNetV3's
/// eps 1e-3 and momentum 0.01) -> activation, children 0, 1, 2.
Seq conv_bn_act(int in, int out, int k, int stride, int dilation, int groups, Act act) {
  Seq s(std::make_shared<SeqImpl>());
  s->push_back(conv2d(in, out, k, stride, (k - 1) / 2 * dilation, dilation, groups));
  s->push_back(BatchNorm2d(out, 1e-3, 0.01));
  if (act == Act::relu) s->push_back(nn::ReLU(true));
  if (act == Act::hardswish) s->push_back(Hardswish());
  return s;
}

/// Squeeze-excitation: channel weights from the image-pooled map, ReLU then hard sigmoid.
struct SqueezeExcitationImpl : nn::Module {
  SqueezeExcitationImpl(int channels, int squeeze) {
    fc1 = register_module("fc1", conv2d(channels, squeeze, 1, 1, 0, 1, 1, true));
    fc2 = register_module("fc2", conv2d(squeeze, channels, 1, 1, 0, 1, 1, true));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto s = x.mean({2, 3}, /*keepdim=*/true);
    return x * torch::hardsigmoid(fc2->forward(torch::relu(fc1->forward(s))));
  }
  Conv fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(SqueezeExcitation);

/// Channels rounded to a multiple of 8, never more than 10 % down (torchvision's _make_divisible).
int make_divisible(double v) {
  int rounded = std::max(8, int(v + 4) / 8 * 8);
  if (rounded < 0.9 * v) rounded += 8;
  return rounded;
}

/// One row of MobileNetV3-Large's table (the paper's Table 1).
struct BlockSpec {
  int in, kernel, expanded, out;
  bool se, hardswish;
  int stride, dilation;
};

/// MobileNetV3's inverted residual: 1x1 expansion (skipped when it would not expand), depthwise
/// conv (stride 1 where dilated), optional squeeze-excitation, 1x1 projection without activation;
/// a shortcut where shapes allow.
struct InvertedResidualImpl : nn::Module {
  explicit InvertedResidualImpl(const BlockSpec& b) : shortcut(b.stride == 1 && b.in == b.out) {
    const Act act = b.hardswish ? Act::hardswish : Act::relu;
    Seq s(std::make_shared<SeqImpl>());
    if (b.expanded != b.in) s->push_back(conv_bn_act(b.in, b.expanded, 1, 1, 1, 1, act));
    s->push_back(
        conv_bn_act(b.expanded, b.expanded, b.kernel, b.dilation > 1 ? 1 : b.stride, b.dilation, b.expanded, act));
    if (b.se) s->push_back(SqueezeExcitation(b.expanded, make_divisible(b.expanded / 4)));
    s->push_back(conv_bn_act(b.expanded, b.out, 1, 1, 1, 1, Act::none));
    block = register_module("block", s);
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = block->forward(x);
    return shortcut ? y + x : y;
  }
  Seq block{nullptr};
  bool shortcut;
};
TORCH_MODULE(InvertedResidual);

/// The block whose output is the low-level map: the last block of stride 8 (torchvision picks it
/// as the fourth-last stage boundary).
constexpr size_t kLowBlock = 4;

/// MobileNetV3-Large's `features` with the last stage dilated (torchvision's dilated=True).
Seq mobilenet_v3_large_features() {
  // in, kernel, expanded, out, SE, hard-swish, stride, dilation
  const std::vector<BlockSpec> table{
      {16, 3, 16, 16, false, false, 1, 1},  {16, 3, 64, 24, false, false, 2, 1},  {24, 3, 72, 24, false, false, 1, 1},
      {24, 5, 72, 40, true, false, 2, 1},   {40, 5, 120, 40, true, false, 1, 1},  {40, 5, 120, 40, true, false, 1, 1},
      {40, 3, 240, 80, false, true, 2, 1},  {80, 3, 200, 80, false, true, 1, 1},  {80, 3, 184, 80, false, true, 1, 1},
      {80, 3, 184, 80, false, true, 1, 1},  {80, 3, 480, 112, true, true, 1, 1},  {112, 3, 672, 112, true, true, 1, 1},
      {112, 5, 672, 160, true, true, 2, 2}, {160, 5, 960, 160, true, true, 1, 2}, {160, 5, 960, 160, true, true, 1, 2},
  };
  Seq s(std::make_shared<SeqImpl>());
  s->push_back(conv_bn_act(3, 16, 3, 2, 1, 1, Act::hardswish));
  for (const auto& b : table) s->push_back(InvertedResidual(b));
  s->push_back(conv_bn_act(160, Lraspp::kHighChannels, 1, 1, 1, 1, Act::hardswish));
  return s;
}

Conv head_conv(int in, int classes) { return conv2d(in, classes, 1, 1, 0, 1, 1, /*bias=*/true); }

}  // namespace

Lraspp::Lraspp(LrasppOptions options) : options_(std::move(options)) {
  CSEG_CHECK(!options_.heads.empty(), "LR-ASPP needs at least one classifier head");
  backbone_ = register_module("backbone", mobilenet_v3_large_features());
  auto classifier = std::make_shared<nn::Module>();
  register_module("classifier", classifier);
  const int inter = options_.inter_channels;
  // The head's norm has BatchNorm2d's defaults (eps 1e-5, momentum 0.1), not MobileNetV3's.
  cbr_ = classifier->register_module("cbr", seq(conv2d(kHighChannels, inter, 1), BatchNorm2d(inter), nn::ReLU(true)));
  scale_ = classifier->register_module("scale", seq(nn::AdaptiveAvgPool2d(nn::AdaptiveAvgPool2dOptions(1)),
                                                    conv2d(kHighChannels, inter, 1), nn::Sigmoid()));
  heads_ = classifier->register_module("heads", nn::ModuleList());
  for (int n : options_.heads) heads_->push_back(head_conv(kLowChannels + inter, n));
}

void Lraspp::add_head(int num_new) {
  CSEG_CHECK(num_new > 0, "a new head needs at least one class");
  options_.heads.push_back(num_new);
  heads_->push_back(head_conv(kLowChannels + options_.inter_channels, num_new));
}

std::pair<torch::Tensor, torch::Tensor> Lraspp::run_backbone(const torch::Tensor& x) {
  torch::Tensor low, y = x;
  size_t i = 0;
  for (auto& block : *backbone_) {
    y = block.forward(y);
    if (i++ == kLowBlock) low = y;
  }
  return {low, y};
}

torch::Tensor Lraspp::encode(const torch::Tensor& x) { return run_backbone(x).second; }

ModelOutput Lraspp::forward(const torch::Tensor& x) {
  auto [low, high] = run_backbone(x);
  auto gated = cbr_->forward(high) * scale_->forward(high);
  // torchvision adds low_classifier(low) and high_classifier(gated): one conv over both maps.
  auto decoded = torch::cat({low, resize_to(gated, low.size(2), low.size(3))}, 1);
  auto lowres = run_heads(heads_, decoded);
  ModelOutput out;
  out.logits = resize_to(lowres, x.size(2), x.size(3));
  if (feature_taps_)
    out.features = {{"low", low}, {"high", high}, {"encoder", high}, {"decoder", decoded}, {"logits_lowres", lowres}};
  return out;
}

std::vector<Segmenter::HeadAlias> Lraspp::head_aliases() const {
  return {{"classifier.low_classifier", "classifier.heads", {"classifier.high_classifier"}}};
}

}  // namespace cseg::models
