#include "cseg/models/fast_scnn.h"

#include "cseg/core/error.h"

namespace nn = torch::nn;
namespace F = torch::nn::functional;

namespace cseg::models {

namespace {

/// nn::Sequential with a concrete forward, so it can nest inside another Sequential (LibTorch
/// cannot store a plain Sequential in one).
struct SeqImpl : nn::SequentialImpl {
  using nn::SequentialImpl::SequentialImpl;
  torch::Tensor forward(torch::Tensor x) { return nn::SequentialImpl::forward(std::move(x)); }
};
TORCH_MODULE(Seq);

Seq named(std::initializer_list<nn::NamedAnyModule> items) { return Seq(std::make_shared<SeqImpl>(items)); }
template <typename... M>
Seq seq(M&&... modules) {
  return Seq(std::make_shared<SeqImpl>(std::forward<M>(modules)...));
}

nn::Conv2d conv(int in, int out, int k, int stride = 1, int pad = 0, int groups = 1, bool bias = false) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, k).stride(stride).padding(pad).groups(groups).bias(bias));
}

/// Wraps `inner` as the child "conv": the reference's _Conv/_DSConv/_DWConv keep their layers in
/// `self.conv = nn.Sequential(...)`.
Seq named_conv(Seq inner) { return named({{"conv", inner}}); }

/// _Conv: Conv-BN-ReLU.
Seq conv_bn_relu(int in, int out, int k, int stride = 1, int pad = 0) {
  return named_conv(seq(conv(in, out, k, stride, pad), nn::BatchNorm2d(out), nn::ReLU(true)));
}

/// _DSConv: depthwise 3x3 + pointwise 1x1, each with BN and ReLU.
Seq ds_conv(int dw, int out, int stride = 1) {
  return named_conv(seq(conv(dw, dw, 3, stride, 1, dw), nn::BatchNorm2d(dw), nn::ReLU(true),
                                   conv(dw, out, 1), nn::BatchNorm2d(out), nn::ReLU(true)));
}

/// _DWConv: depthwise 3x3 with BN and ReLU.
Seq dw_conv(int dw, int out, int stride = 1) {
  return named_conv(seq(conv(dw, out, 3, stride, 1, dw), nn::BatchNorm2d(out), nn::ReLU(true)));
}

torch::Tensor resize_to(const torch::Tensor& x, int64_t h, int64_t w) {
  if (x.size(2) == h && x.size(3) == w) return x;
  return F::interpolate(x, F::InterpolateFuncOptions()
                               .size(std::vector<int64_t>{h, w})
                               .mode(torch::kBilinear)
                               .align_corners(true));
}

/// MobileNetV2 inverted residual without the final activation.
struct LinearBottleneckImpl : nn::Module {
  LinearBottleneckImpl(int in, int out, int t, int stride) : shortcut(stride == 1 && in == out) {
    block = register_module("block", seq(conv_bn_relu(in, in * t, 1), dw_conv(in * t, in * t, stride),
                                                    conv(in * t, out, 1), nn::BatchNorm2d(out)));
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
    for (int i = 0; i < 4; ++i) branches.push_back(register_module("conv" + std::to_string(i + 1), conv_bn_relu(in, inter, 1)));
    proj = register_module("out", conv_bn_relu(in * 2, out, 1));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const int64_t h = x.size(2), w = x.size(3);
    std::vector<torch::Tensor> parts{x};
    const int bins[4] = {1, 2, 3, 6};
    for (int i = 0; i < 4; ++i) {
      auto pooled = F::adaptive_avg_pool2d(x, F::AdaptiveAvgPool2dFuncOptions({bins[i], bins[i]}));
      parts.push_back(resize_to(branches[i]->forward(pooled), h, w));
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
    lower = register_module("conv_lower_res", seq(conv(out, out, 1, 1, 0, 1, true), nn::BatchNorm2d(out)));
    higher = register_module("conv_higher_res", seq(conv(higher_in, out, 1, 1, 0, 1, true), nn::BatchNorm2d(out)));
  }
  torch::Tensor forward(const torch::Tensor& high, const torch::Tensor& low) {
    // The reference upsamples by a fixed 4; resizing to the high-resolution map's size is the
    // same for inputs divisible by 32 and also works for the others.
    auto l = lower->forward(dwconv->forward(resize_to(low, high.size(2), high.size(3))));
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
      named({{"conv", conv_bn_relu(3, 32, 3, 2)}, {"dsconv1", ds_conv(32, 48, 2)}, {"dsconv2", ds_conv(48, 64, 2)}}).ptr());
  global_feature_extractor_ = register_module("global_feature_extractor", GlobalFeatureExtractor().ptr());
  feature_fusion_ = register_module("feature_fusion", FeatureFusion(64, 128, 128).ptr());
  auto classifier = Classifier(128);
  classifier_ = register_module("classifier", classifier.ptr());
  dropout_ = classifier->register_module("dropout", nn::Dropout(options_.dropout));
  heads_ = classifier->register_module("heads", nn::ModuleList());
  for (int n : options_.heads) heads_->push_back(conv(128, n, 1, 1, 0, 1, true));
  if (options_.aux) {
    auxlayer_ = register_module("auxlayer", nn::Sequential(conv(64, 32, 3, 1, 1), nn::BatchNorm2d(32), nn::ReLU(true),
                                                           nn::Dropout(0.1)));
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

ModelOutput FastScnn::forward(const torch::Tensor& x) {
  const int64_t h = x.size(2), w = x.size(3);
  ModelOutput out;
  auto higher = learning_to_downsample_->as<SeqImpl>()->forward(x);
  auto global = global_feature_extractor_->as<GlobalFeatureExtractorImpl>()->forward(higher);
  auto fused = feature_fusion_->as<FeatureFusionImpl>()->forward(higher, global);
  auto* cls = classifier_->as<ClassifierImpl>();
  auto decoded = cls->dsconv2->forward(cls->dsconv1->forward(fused));
  auto dropped = dropout_->forward(decoded);
  std::vector<torch::Tensor> parts;
  for (const auto& head : *heads_) parts.push_back(head->as<nn::Conv2dImpl>()->forward(dropped));
  out.logits = resize_to(torch::cat(parts, 1), h, w);
  if (options_.aux && is_training()) {
    auto a = auxlayer_->forward(higher);
    std::vector<torch::Tensor> aparts;
    for (const auto& head : *aux_heads_) aparts.push_back(head->as<nn::Conv2dImpl>()->forward(a));
    out.aux_logits = resize_to(torch::cat(aparts, 1), h, w);
  }
  out.features = {{"learning_to_downsample", higher}, {"global_feature_extractor", global},
                  {"feature_fusion", fused}, {"decoder", decoded}};
  return out;
}

std::vector<torch::Tensor> FastScnn::encoder_parameters() {
  auto a = learning_to_downsample_->parameters();
  auto b = global_feature_extractor_->parameters();
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::shared_ptr<Segmenter> FastScnn::make_like() const { return std::make_shared<FastScnn>(options_); }

std::shared_ptr<Segmenter> make_model(const config::ModelConfig& cfg, int initial_classes) {
  if (cfg.name == "fast_scnn") {
    FastScnnOptions o;
    o.heads = {initial_classes};
    o.aux = cfg.aux;
    o.dropout = cfg.dropout;
    return std::make_shared<FastScnn>(o);
  }
  fail("unknown model '{}'; known: {}", cfg.name, fmt::join(model_names(), ", "));
}

std::vector<std::string> model_names() { return {"fast_scnn"}; }

void copy_state(Segmenter& dst, const Segmenter& src) {
  torch::NoGradGuard guard;
  auto sp = src.named_parameters(true);
  auto sb = src.named_buffers(true);
  for (auto& p : dst.named_parameters(true)) {
    const auto* s = sp.find(p.key());
    CSEG_CHECK(s && s->sizes() == p.value().sizes(), "copy_state: parameter '{}' does not match", p.key());
    p.value().copy_(*s);
  }
  for (auto& b : dst.named_buffers(true)) {
    const auto* s = sb.find(b.key());
    CSEG_CHECK(s && s->sizes() == b.value().sizes(), "copy_state: buffer '{}' does not match", b.key());
    b.value().copy_(*s);
  }
}

}  // namespace cseg::models
