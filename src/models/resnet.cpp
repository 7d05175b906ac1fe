#include "cseg/models/resnet.h"

#include "cseg/core/error.h"

namespace nn = torch::nn;
namespace F = torch::nn::functional;

namespace cseg::models {

namespace {

/// 1x1 conv + norm on the shortcut when the shape changes (torchvision's `downsample`).
Seq shortcut(Norm norm, int in, int out, int stride) {
  Seq s(std::make_shared<SeqImpl>());
  s->push_back(conv2d(in, out, 1, stride));
  s->push_back(norm_layer(norm, out));
  return s;
}

struct BasicBlockImpl : ResBlockImpl {
  static constexpr int expansion = 1;
  BasicBlockImpl(Norm n, int in, int planes, int stride, int dilation) {
    norm = n;
    conv1 = register_module("conv1", conv2d(in, planes, 3, stride, dilation, dilation));
    bn1 = norm_layer(n, planes);
    register_module("bn1", bn1.ptr());
    conv2 = register_module("conv2", conv2d(planes, planes, 3, 1, dilation, dilation));
    bn2 = norm_layer(n, planes);
    register_module("bn2", bn2.ptr());
    if (stride != 1 || in != planes) downsample = register_module("downsample", shortcut(n, in, planes, stride));
  }
  torch::Tensor forward_preact(const torch::Tensor& x) override {
    // In place on the norm's output (its backward does not read it), as torchvision's blocks do.
    auto out = activate_(norm, bn1.forward(conv1->forward(x)));
    out = bn2.forward(conv2->forward(out));
    return out.add_(downsample ? downsample->forward(x) : x);
  }
  Conv conv1{nullptr}, conv2{nullptr};
  nn::AnyModule bn1, bn2;
  Seq downsample{nullptr};
};

struct BottleneckImpl : ResBlockImpl {
  static constexpr int expansion = 4;
  BottleneckImpl(Norm n, int in, int planes, int stride, int dilation) {
    norm = n;
    const int out = planes * expansion;
    conv1 = register_module("conv1", conv2d(in, planes, 1));
    bn1 = norm_layer(n, planes);
    register_module("bn1", bn1.ptr());
    conv2 = register_module("conv2", conv2d(planes, planes, 3, stride, dilation, dilation));
    bn2 = norm_layer(n, planes);
    register_module("bn2", bn2.ptr());
    conv3 = register_module("conv3", conv2d(planes, out, 1));
    bn3 = norm_layer(n, out);
    register_module("bn3", bn3.ptr());
    if (stride != 1 || in != out) downsample = register_module("downsample", shortcut(n, in, out, stride));
  }
  torch::Tensor forward_preact(const torch::Tensor& x) override {
    // In place on the norms' outputs (their backward does not read them), as torchvision's blocks do.
    auto out = activate_(norm, bn1.forward(conv1->forward(x)));
    out = activate_(norm, bn2.forward(conv2->forward(out)));
    out = bn3.forward(conv3->forward(out));
    return out.add_(downsample ? downsample->forward(x) : x);
  }
  Conv conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  nn::AnyModule bn1, bn2, bn3;
  Seq downsample{nullptr};
};

std::array<int, 4> blocks_for(int depth) {
  switch (depth) {
    case 18: return {2, 2, 2, 2};
    case 34:
    case 50: return {3, 4, 6, 3};
    case 101: return {3, 4, 23, 3};
    case 152: return {3, 8, 36, 3};
  }
  fail("unsupported ResNet depth {}; expected 18, 34, 50, 101 or 152", depth);
}

}  // namespace

int parse_resnet_depth(const std::string& name) {
  for (int d : {18, 34, 50, 101, 152})
    if (name == "resnet" + std::to_string(d)) return d;
  fail("unknown backbone '{}'; expected resnet18, resnet34, resnet50, resnet101 or resnet152", name);
}

ResNetImpl::ResNetImpl(ResNetOptions options) : options_(options) {
  const auto blocks = blocks_for(options_.depth);
  const bool bottleneck = options_.depth >= 50;
  const int expansion = bottleneck ? 4 : 1;
  const Norm n = options_.norm;
  conv1_ = register_module("conv1", conv2d(3, 64, 7, 2, 3));
  bn1_ = norm_layer(n, 64);
  register_module("bn1", bn1_.ptr());
  int in = 64, dilation = 1;
  for (int l = 0; l < 4; ++l) {
    const int planes = 64 << l;
    int stride = l == 0 ? 1 : 2;
    const int previous_dilation = dilation;
    if (l > 0 && options_.dilate[l - 1]) {  // torchvision's replace_stride_with_dilation
      dilation *= stride;
      stride = 1;
    }
    Seq layer(std::make_shared<SeqImpl>());
    for (int b = 0; b < blocks[l]; ++b) {
      // torchvision: the first block keeps the previous dilation, the others use the new one.
      const int d = b == 0 && !options_.dilate_first_block ? previous_dilation : dilation;
      const int s = b == 0 ? stride : 1;
      std::shared_ptr<ResBlockImpl> block;
      if (bottleneck)
        block = std::make_shared<BottleneckImpl>(n, in, planes, s, d);
      else
        block = std::make_shared<BasicBlockImpl>(n, in, planes, s, d);
      layer->push_back(std::to_string(b), block);
      layers_[l].push_back(block);
      in = planes * expansion;
    }
    channels_[l] = in;
    register_module("layer" + std::to_string(l + 1), layer);
  }
  if (options_.num_classes > 0) fc_ = register_module("fc", Linear(in, options_.num_classes));
}

ResNetFeatures ResNetImpl::features(const torch::Tensor& x, bool taps) {
  ResNetFeatures f;
  auto y = activate_(options_.norm, bn1_.forward(conv1_->forward(x)));
  f.stem = F::max_pool2d(y, F::MaxPool2dFuncOptions(3).stride(2).padding(1));
  y = f.stem;
  for (int l = 0; l < 4; ++l) {
    for (size_t b = 0; b < layers_[l].size(); ++b) {
      auto pre = layers_[l][b]->forward_preact(y);
      if (taps && b + 1 == layers_[l].size()) {  // the stage's tap: its map before the activation
        f.pre[l] = pre;
        y = activate(options_.norm, pre);
      } else {
        y = activate_(options_.norm, pre);  // in place: nothing else holds the sum
      }
    }
    f.out[l] = y;
  }
  return f;
}

torch::Tensor ResNetImpl::forward(const torch::Tensor& x) {
  CSEG_CHECK(!fc_.is_empty(), "this ResNet was built without a classifier (num_classes = 0)");
  auto y = features(x).out[3];
  return fc_->forward(F::adaptive_avg_pool2d(y, F::AdaptiveAvgPool2dFuncOptions(1)).flatten(1));
}

}  // namespace cseg::models
