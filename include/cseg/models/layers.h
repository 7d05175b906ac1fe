#pragma once
/// Building blocks shared by the models: a nestable Sequential, convolutions that report their
/// multiply-adds to a cost probe, the normalisation choices (BatchNorm, frozen BatchNorm,
/// BatchNorm + LeakyReLU(0.01) as in the in-place-ABN DeepLab), and bilinear resizing.
#include <torch/torch.h>

#include <string>

namespace cseg::models {

/// nn::Sequential with a concrete forward, so it can nest inside another Sequential (LibTorch
/// cannot store a plain Sequential in one).
struct SeqImpl : torch::nn::SequentialImpl {
  using torch::nn::SequentialImpl::SequentialImpl;
  torch::Tensor forward(torch::Tensor x) { return torch::nn::SequentialImpl::forward(std::move(x)); }
};
TORCH_MODULE(Seq);

Seq named(std::initializer_list<torch::nn::NamedAnyModule> items);
template <typename... M>
Seq seq(M&&... modules) {
  return Seq(std::make_shared<SeqImpl>(std::forward<M>(modules)...));
}

/// Multiply-adds counted while a CostProbe is active on this thread (see models/cost.h). Only
/// convolutions and linear layers report; they are > 99% of a segmenter's multiply-adds.
void report_macs(const torch::nn::Module* module, int64_t macs);

/// nn::Conv2d that reports its multiply-adds.
struct ConvImpl : torch::nn::Conv2dImpl {
  using torch::nn::Conv2dImpl::Conv2dImpl;
  torch::Tensor forward(const torch::Tensor& x);
  /// Gives a convolution built without a bias one (the registered "bias" slot exists, undefined).
  void set_bias(torch::Tensor b) {
    parameters_["bias"] = b;
    bias = std::move(b);
  }
};
TORCH_MODULE(Conv);

/// nn::ConvTranspose2d that reports its multiply-adds.
struct ConvTransposeImpl : torch::nn::ConvTranspose2dImpl {
  using torch::nn::ConvTranspose2dImpl::ConvTranspose2dImpl;
  torch::Tensor forward(const torch::Tensor& x);
};
TORCH_MODULE(ConvTranspose);

/// nn::Linear that reports its multiply-adds.
struct LinearImpl : torch::nn::LinearImpl {
  using torch::nn::LinearImpl::LinearImpl;
  torch::Tensor forward(const torch::Tensor& x);
};
TORCH_MODULE(Linear);

Conv conv2d(int in, int out, int k, int stride = 1, int pad = 0, int dilation = 1, int groups = 1, bool bias = false);

/// Normalisation + activation flavour of a model.
///  bn        : BatchNorm2d, ReLU
///  frozen_bn : BatchNorm2d always in inference mode with fixed affine parameters, ReLU
///  bn_leaky  : BatchNorm2d, LeakyReLU(0.01) (the activated-BN formulation of in-place ABN)
enum class Norm { bn, frozen_bn, bn_leaky };
Norm parse_norm(const std::string& name);  ///< throws naming the value and the choices

/// BatchNorm2d with torch.nn.BatchNorm2d's names and numerics (weight, bias, running_mean,
/// running_var, num_batches_tracked; momentum 0.1, eps 1e-5), except that in training mode it
/// normalises with the statistics of the global batch when a synchronised-BatchNorm group is
/// installed (distributed/sync_batch_norm.h, train.sync_bn in data-parallel runs).
struct BatchNorm2dImpl : torch::nn::Module {
  explicit BatchNorm2dImpl(int64_t channels, double eps = 1e-5, double momentum = 0.1);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias, running_mean, running_var, num_batches_tracked;
  double eps, momentum;
  /// Set by fold_batch_norm (models/inference.h) once the preceding convolution absorbed this
  /// layer: forward passes its input through, and refuses to train.
  bool folded = false;
};
TORCH_MODULE(BatchNorm2d);

/// BatchNorm2d whose statistics and affine parameters never change: it always normalises with
/// the running statistics, and its weight and bias do not require gradients. Parameter and buffer
/// names are BatchNorm2d's, so checkpoints of either load into the other. (Not a BatchNorm2dImpl
/// subclass: LibTorch does not export what a subclass's vtable needs.)
struct FrozenBatchNorm2dImpl : torch::nn::Module {
  explicit FrozenBatchNorm2dImpl(int64_t channels, double eps = 1e-5);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias, running_mean, running_var, num_batches_tracked;
  double eps;
  bool folded = false;  ///< as BatchNorm2dImpl::folded
};
TORCH_MODULE(FrozenBatchNorm2d);

/// The norm layer of `norm` (a BatchNorm2d or a frozen one).
torch::nn::AnyModule norm_layer(Norm norm, int channels);
/// The activation that follows a norm layer: ReLU, or LeakyReLU(0.01) for bn_leaky.
torch::nn::AnyModule activation(Norm norm);
torch::Tensor activate(Norm norm, const torch::Tensor& x);
torch::Tensor activate_(Norm norm, torch::Tensor x);  ///< in place

/// Conv (no bias) -> norm -> activation, as a Sequential with children 0, 1, 2 (torchvision's
/// layout for ASPP branches and heads).
Seq conv_norm_act(Norm norm, int in, int out, int k, int stride = 1, int pad = 0, int dilation = 1);

/// Bilinear resize to (h, w); a no-op when the size already matches.
torch::Tensor resize_to(const torch::Tensor& x, int64_t h, int64_t w, bool align_corners = false);

/// Nearest-neighbour resize of per-pixel maps [N, H, W] (labels, masks) to (h, w), same dtype.
torch::Tensor resize_nearest(const torch::Tensor& maps, int64_t h, int64_t w);

/// Concatenates the outputs of per-step 1x1 heads along channels.
torch::Tensor run_heads(torch::nn::ModuleList& heads, const torch::Tensor& x);

}  // namespace cseg::models
