#include "cseg/models/fast_scnn.h"

#include <algorithm>

#include "cseg/core/error.h"

namespace nn = torch::nn;
namespace F = torch::nn::functional;

namespace cseg::models {

namespace {

/// The reference's convolutions (no dilation), as counted Conv modules.
Conv conv(int in, int out, int k, int stride = 1, int pad = 0, int groups = 1, bool bias = false) {
  return conv2d(in, out, k, stride, pad, 1, groups, bias);
}

/// Wraps `inner` as the child "conv": the reference's _Conv/_DSConv/_DWConv keep their layers in
/// `self.conv = nn.Sequential(...)`.
Seq named_conv(Seq inner) { return named({{"conv", inner}}); }

/// _Conv: Conv-BN-ReLU.
Seq conv_bn_relu(int in, int out, int k, int stride = 1, int pad = 0) {
  return named_conv(seq(conv(in, out, k, stride, pad), BatchNorm2d(out), nn::ReLU(true)));
}

/// _DSConv: depthwise 3x3 + pointwise 1x1, each with BN and ReLU.
Seq ds_conv(int dw, int out, int stride = 1) {
  return named_conv(seq(conv(dw, dw, 3, stride, 1, dw), BatchNorm2d(dw), nn::ReLU(true), conv(dw, out, 1),
                        BatchNorm2d(out), nn::ReLU(true)));
}

/// _DWConv: depthwise 3x3 with BN and ReLU.
Seq dw_conv(int dw, int out, int stride = 1) {
  return named_conv(seq(conv(dw, out, 3, stride, 1, dw), BatchNorm2d(out), nn::ReLU(true)));
}

/// The reference resizes with align_corners=True throughout.
torch::Tensor resize(const torch::Tensor& x, int64_t h, int64_t w) { return resize_to(x, h, w, true); }

/// MobileNetV2 inverted residual without the final activation.
struct LinearBottleneckImpl : nn::Module {
  LinearBottleneckImpl(int in, int out, int t, int stride) : shortcut(stride == 1 && in == out) {
    block = register_module("block", seq(conv_bn_relu(in, in * t, 1), dw_conv(in * t, in * t, stride),
                                         conv(in * t, out, 1), BatchNorm2d(out)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto out = block->forward(x);
    return shortcut ? x + out : out;
  }
  Seq block{nullptr};
  bool shortcut;
};
TORCH_MODULE(LinearBottleneck);

struct PyramidPoolingImpl : nn::Module {
  PyramidPoolingImpl(int in, int out) {
    const int inter = in / 4;
    for (int i = 0; i < 4; ++i)
      branches.push_back(register_module("conv" + std::to_string(i + 1), conv_bn_relu(in, inter, 1)));
    proj = register_module("out", conv_bn_relu(in * 2, out, 1));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const int64_t h = x.size(2), w = x.size(3);
    std::vector<torch::Tensor> parts{x};
    const int bins[4] = {1, 2, 3, 6};
    for (int i = 0; i < 4; ++i) {
      auto pooled = F::adaptive_avg_pool2d(x, F::AdaptiveAvgPool2dFuncOptions({bins[i], bins[i]}));
      parts.push_back(resize(branches[i]->forward(pooled), h, w));
    }
    return proj->forward(torch::cat(parts, 1));
  }
  std::vector<Seq> branches;
  Seq proj{nullptr};
};
TORCH_MODULE(PyramidPooling);

Seq bottleneck_stage(int in, int out, int blocks, int t, int stride) {
  Seq s(std::make_shared<SeqImpl>());
  s->push_back(LinearBottleneck(in, out, t, stride));
  for (int i = 1; i < blocks; ++i) s->push_back(LinearBottleneck(out, out, t, 1));
  return s;
}

struct GlobalFeatureExtractorImpl : nn::Module {
  GlobalFeatureExtractorImpl() {
    b1 = register_module("bottleneck1", bottleneck_stage(64, 64, 3, 6, 2));
    b2 = register_module("bottleneck2", bottleneck_stage(64, 96, 3, 6, 2));
    b3 = register_module("bottleneck3", bottleneck_stage(96, 128, 3, 6, 1));
    ppm = register_module("ppm", PyramidPooling(128, 128));
  }
  torch::Tensor forward(const torch::Tensor& x) { return ppm->forward(b3->forward(b2->forward(b1->forward(x)))); }
  Seq b1{nullptr}, b2{nullptr}, b3{nullptr};
  PyramidPooling ppm{nullptr};
};
TORCH_MODULE(GlobalFeatureExtractor);

struct FeatureFusionImpl : nn::Module {
  FeatureFusionImpl(int higher_in, int lower_in, int out) {
    dwconv = register_module("dwconv", dw_conv(lower_in, out, 1));
    lower = register_module("conv_lower_res", seq(conv(out, out, 1, 1, 0, 1, true), BatchNorm2d(out)));
    higher = register_module("conv_higher_res", seq(conv(higher_in, out, 1, 1, 0, 1, true), BatchNorm2d(out)));
  }
  torch::Tensor forward(const torch::Tensor& high, const torch::Tensor& low) {
    // The reference upsamples by a fixed 4; resizing to the high-resolution map's size is the
    // same for inputs divisible by 32 and also works for the others.
    auto l = lower->forward(dwconv->forward(resize(low, high.size(2), high.size(3))));
    return torch::relu(higher->forward(high) + l);
  }
  Seq dwconv{nullptr}, lower{nullptr}, higher{nullptr};
};
TORCH_MODULE(FeatureFusion);

struct ClassifierImpl : nn::Module {
  explicit ClassifierImpl(int ch) {
    dsconv1 = register_module("dsconv1", ds_conv(ch, ch));
    dsconv2 = register_module("dsconv2", ds_conv(ch, ch));
  }
  Seq dsconv1{nullptr}, dsconv2{nullptr};
};
TORCH_MODULE(Classifier);

}  // namespace

FastScnn::FastScnn(FastScnnOptions options) : options_(std::move(options)) {
  CSEG_CHECK(!options_.heads.empty(), "Fast-SCNN needs at least one classifier head");
  learning_to_downsample_ = register_module(
      "learning_to_downsample",
      named({{"conv", conv_bn_relu(3, 32, 3, 2)}, {"dsconv1", ds_conv(32, 48, 2)}, {"dsconv2", ds_conv(48, 64, 2)}})
          .ptr());
  global_feature_extractor_ = register_module("global_feature_extractor", GlobalFeatureExtractor().ptr());
  feature_fusion_ = register_module("feature_fusion", FeatureFusion(64, 128, 128).ptr());
  auto classifier = Classifier(128);
  classifier_ = register_module("classifier", classifier.ptr());
  dropout_ = classifier->register_module("dropout", nn::Dropout(options_.dropout));
  heads_ = classifier->register_module("heads", nn::ModuleList());
  for (int n : options_.heads) heads_->push_back(conv(128, n, 1, 1, 0, 1, true));
  if (options_.aux) {
    auxlayer_ = register_module(
        "auxlayer", nn::Sequential(conv(64, 32, 3, 1, 1), BatchNorm2d(32), nn::ReLU(true), nn::Dropout(0.1)));
    aux_heads_ = register_module("aux_heads", nn::ModuleList());
    for (int n : options_.heads) aux_heads_->push_back(conv(32, n, 1, 1, 0, 1, true));
  }
}

void FastScnn::add_head(int num_new) {
  CSEG_CHECK(num_new > 0, "a new head needs at least one class");
  options_.heads.push_back(num_new);
  heads_->push_back(conv(128, num_new, 1, 1, 0, 1, true));
  if (options_.aux) aux_heads_->push_back(conv(32, num_new, 1, 1, 0, 1, true));
}

namespace {
/// Latent layers in forward order; freezing through one freezes it and those before it.
const std::vector<std::string>& fast_scnn_latent_layers() {
  static const std::vector<std::string> layers{"learning_to_downsample", "global_feature_extractor", "feature_fusion"};
  return layers;
}
}  // namespace

template <typename Fn>
torch::Tensor FastScnn::stage(int depth, torch::nn::Module& module, Fn&& run) {
  if (depth >= frozen_depth_) return run();
  module.eval();  // frozen: fixed normalisation statistics, no gradients
  torch::NoGradGuard no_grad;
  return run();
}

ModelOutput FastScnn::forward(const torch::Tensor& x) {
  const int64_t h = x.size(2), w = x.size(3);
  ModelOutput out;
  auto higher = stage(0, *learning_to_downsample_, [&] { return learning_to_downsample_->as<SeqImpl>()->forward(x); });
  auto global = stage(1, *global_feature_extractor_,
                      [&] { return global_feature_extractor_->as<GlobalFeatureExtractorImpl>()->forward(higher); });
  auto fused =
      stage(2, *feature_fusion_, [&] { return feature_fusion_->as<FeatureFusionImpl>()->forward(higher, global); });
  auto* cls = classifier_->as<ClassifierImpl>();
  auto decoded = cls->dsconv2->forward(cls->dsconv1->forward(fused));
  auto dropped = dropout_->forward(decoded);
  auto lowres = run_heads(heads_, dropped);
  out.logits = resize(lowres, h, w);
  if (options_.aux && is_training()) {
    auto a = auxlayer_->forward(higher);
    out.aux_logits = resize(run_heads(aux_heads_, a), h, w);
  }
  if (feature_taps_)
    out.features = {{"learning_to_downsample", higher},
                    {"global_feature_extractor", global},
                    {"feature_fusion", fused},
                    {"decoder", decoded},
                    {"encoder", global},
                    {"logits_lowres", lowres}};
  return out;
}

std::vector<std::string> FastScnn::latent_layers() const { return fast_scnn_latent_layers(); }

std::vector<std::string> FastScnn::latent_taps(const std::string& layer) const {
  // The fusion needs both the high-resolution branch and the global one.
  if (layer == "learning_to_downsample") return {"learning_to_downsample"};
  if (layer == "global_feature_extractor") return {"learning_to_downsample", "global_feature_extractor"};
  if (layer == "feature_fusion") return {"feature_fusion"};
  fail("fast_scnn has no latent layer '{}'; layers: {}", layer, fmt::join(fast_scnn_latent_layers(), ", "));
}

torch::Tensor FastScnn::forward_from(const std::string& layer, const std::vector<torch::Tensor>& latents, int64_t h,
                                     int64_t w) {
  CSEG_CHECK(latents.size() == latent_taps(layer).size(), "fast_scnn: layer '{}' needs {} stored tensors, got {}",
             layer, latent_taps(layer).size(), latents.size());
  torch::Tensor fused;
  if (layer == "feature_fusion") {
    fused = latents[0];
  } else {
    const auto& higher = latents[0];
    auto global = layer == "global_feature_extractor" ? latents[1] : stage(1, *global_feature_extractor_, [&] {
      return global_feature_extractor_->as<GlobalFeatureExtractorImpl>()->forward(higher);
    });
    fused =
        stage(2, *feature_fusion_, [&] { return feature_fusion_->as<FeatureFusionImpl>()->forward(higher, global); });
  }
  auto* cls = classifier_->as<ClassifierImpl>();
  auto decoded = cls->dsconv2->forward(cls->dsconv1->forward(fused));
  return resize(run_heads(heads_, dropout_->forward(decoded)), h, w);
}

void FastScnn::freeze_through(const std::string& layer) {
  const auto& layers = fast_scnn_latent_layers();
  const auto it = std::find(layers.begin(), layers.end(), layer);
  CSEG_CHECK(layer.empty() || it != layers.end(), "fast_scnn has no layer '{}' to freeze through; layers: {}", layer,
             fmt::join(layers, ", "));
  frozen_depth_ = layer.empty() ? 0 : static_cast<int>(it - layers.begin()) + 1;
  const std::shared_ptr<torch::nn::Module> modules[] = {learning_to_downsample_, global_feature_extractor_,
                                                        feature_fusion_};
  for (int k = 0; k < 3; ++k)
    for (auto& p : modules[k]->parameters()) p.requires_grad_(k >= frozen_depth_);
}

std::vector<torch::Tensor> FastScnn::encoder_parameters() {
  auto a = learning_to_downsample_->parameters();
  auto b = global_feature_extractor_->parameters();
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::shared_ptr<Segmenter> FastScnn::make_like() const { return std::make_shared<FastScnn>(options_); }

std::vector<Segmenter::HeadAlias> FastScnn::head_aliases() const {
  std::vector<HeadAlias> a{{"classifier.conv.1", "classifier.heads"}};
  if (options_.aux) a.push_back({"auxlayer.4", "aux_heads"});
  return a;
}

}  // namespace cseg::models

namespace cseg::models {

torch::Tensor FastScnn::encode(const torch::Tensor& x) {
  auto higher = learning_to_downsample_->as<SeqImpl>()->forward(x);
  return global_feature_extractor_->as<GlobalFeatureExtractorImpl>()->forward(higher);
}

}  // namespace cseg::models
