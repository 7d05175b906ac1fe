#include "cseg/models/layers.h"

#include "cseg/core/error.h"
#include "cseg/distributed/sync_batch_norm.h"
#include "cseg/models/cost.h"

namespace nn = torch::nn;
namespace F = torch::nn::functional;

namespace cseg::models {

Seq named(std::initializer_list<nn::NamedAnyModule> items) { return Seq(std::make_shared<SeqImpl>(items)); }

torch::Tensor ConvImpl::forward(const torch::Tensor& x) {
  auto y = nn::Conv2dImpl::forward(x);
  // Each output element costs (in / groups) * kh * kw multiply-adds.
  report_macs(this, y.numel() * weight.size(1) * weight.size(2) * weight.size(3));
  return y;
}

torch::Tensor ConvTransposeImpl::forward(const torch::Tensor& x) {
  auto y = nn::ConvTranspose2dImpl::forward(x);
  // Each input element is spread over out/groups * kh * kw outputs.
  report_macs(this, x.numel() * weight.size(1) * weight.size(2) * weight.size(3));
  return y;
}

torch::Tensor LinearImpl::forward(const torch::Tensor& x) {
  auto y = nn::LinearImpl::forward(x);
  report_macs(this, y.numel() * weight.size(1));
  return y;
}

Conv conv2d(int in, int out, int k, int stride, int pad, int dilation, int groups, bool bias) {
  return Conv(nn::Conv2dOptions(in, out, k).stride(stride).padding(pad).dilation(dilation).groups(groups).bias(bias));
}

Norm parse_norm(const std::string& name) {
  if (name == "bn") return Norm::bn;
  if (name == "frozen_bn") return Norm::frozen_bn;
  if (name == "bn_leaky") return Norm::bn_leaky;
  fail("unknown norm '{}'; expected bn, frozen_bn or bn_leaky", name);
}

BatchNorm2dImpl::BatchNorm2dImpl(int64_t channels, double eps, double momentum) : eps(eps), momentum(momentum) {
  weight = register_parameter("weight", torch::ones({channels}));
  bias = register_parameter("bias", torch::zeros({channels}));
  running_mean = register_buffer("running_mean", torch::zeros({channels}));
  running_var = register_buffer("running_var", torch::ones({channels}));
  num_batches_tracked = register_buffer("num_batches_tracked", torch::tensor(int64_t(0)));
}

torch::Tensor BatchNorm2dImpl::forward(const torch::Tensor& x) {
  if (folded) {
    CSEG_CHECK(!is_training(), "a BatchNorm2d folded into its convolution for inference cannot train");
    return x;
  }
  if (is_training()) {
    torch::NoGradGuard no_grad;
    num_batches_tracked.add_(1);
  }
  if (is_training() && distributed::sync_batch_norm_group())
    return distributed::sync_batch_norm(x, weight, bias, running_mean, running_var, momentum, eps);
  if (is_training() && x.dim() == 4 && !x.is_contiguous() && x.is_contiguous(torch::MemoryFormat::ChannelsLast)) {
    // LibTorch 1.13's channels-last batch-norm backward on CPU loses precision (up to ~5% relative
    // error in the input gradient on Fast-SCNN's activations, against float64): normalise in NCHW.
    return torch::batch_norm(x.contiguous(), weight, bias, running_mean, running_var, true, momentum, eps, true)
        .contiguous(torch::MemoryFormat::ChannelsLast);
  }
  return torch::batch_norm(x, weight, bias, running_mean, running_var, is_training(), momentum, eps,
                           /*cudnn_enabled=*/true);
}

FrozenBatchNorm2dImpl::FrozenBatchNorm2dImpl(int64_t channels, double eps) : eps(eps) {
  weight = register_parameter("weight", torch::ones({channels}), /*requires_grad=*/false);
  bias = register_parameter("bias", torch::zeros({channels}), false);
  running_mean = register_buffer("running_mean", torch::zeros({channels}));
  running_var = register_buffer("running_var", torch::ones({channels}));
  num_batches_tracked = register_buffer("num_batches_tracked", torch::tensor(int64_t(0)));
}

torch::Tensor FrozenBatchNorm2dImpl::forward(const torch::Tensor& x) {
  if (folded) {
    CSEG_CHECK(!is_training(), "a FrozenBatchNorm2d folded into its convolution for inference cannot train");
    return x;
  }
  return torch::batch_norm(x, weight, bias, running_mean, running_var, /*training=*/false, 0.0, eps,
                           /*cudnn_enabled=*/true);
}

nn::AnyModule norm_layer(Norm norm, int channels) {
  if (norm == Norm::frozen_bn) return nn::AnyModule(FrozenBatchNorm2d(channels));
  return nn::AnyModule(BatchNorm2d(channels));
}

nn::AnyModule activation(Norm norm) {
  if (norm == Norm::bn_leaky)
    return nn::AnyModule(nn::LeakyReLU(nn::LeakyReLUOptions().negative_slope(0.01).inplace(true)));
  return nn::AnyModule(nn::ReLU(true));
}

torch::Tensor activate(Norm norm, const torch::Tensor& x) {
  return norm == Norm::bn_leaky ? F::leaky_relu(x, F::LeakyReLUFuncOptions().negative_slope(0.01)) : torch::relu(x);
}

torch::Tensor activate_(Norm norm, torch::Tensor x) {
  return norm == Norm::bn_leaky ? F::leaky_relu(x, F::LeakyReLUFuncOptions().negative_slope(0.01).inplace(true))
                                : torch::relu_(x);
}

Seq conv_norm_act(Norm norm, int in, int out, int k, int stride, int pad, int dilation) {
  Seq s(std::make_shared<SeqImpl>());
  s->push_back(conv2d(in, out, k, stride, pad, dilation));
  s->push_back(norm_layer(norm, out));
  s->push_back(activation(norm));
  return s;
}

torch::Tensor resize_to(const torch::Tensor& x, int64_t h, int64_t w, bool align_corners) {
  if (x.size(2) == h && x.size(3) == w) return x;
  return F::interpolate(
      x,
      F::InterpolateFuncOptions().size(std::vector<int64_t>{h, w}).mode(torch::kBilinear).align_corners(align_corners));
}

torch::Tensor resize_nearest(const torch::Tensor& maps, int64_t h, int64_t w) {
  auto x = F::interpolate(maps.unsqueeze(1).to(torch::kFloat),
                          F::InterpolateFuncOptions().size(std::vector<int64_t>{h, w}).mode(torch::kNearest));
  return x.squeeze(1).to(maps.scalar_type());
}

torch::Tensor run_heads(nn::ModuleList& heads, const torch::Tensor& x) {
  std::vector<torch::Tensor> parts;
  for (const auto& head : *heads) parts.push_back(head->as<ConvImpl>()->forward(x));
  return parts.size() == 1 ? parts[0] : torch::cat(parts, 1);
}

}  // namespace cseg::models
