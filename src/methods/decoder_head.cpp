#include "cseg/methods/decoder_head.h"

namespace F = torch::nn::functional;

namespace cseg::methods {

int64_t DecoderHead::ensure(models::Segmenter& model) {
  if (defined()) return weight.size(1);
  const bool was_training = model.is_training();
  model.eval();
  const auto on = torch::TensorOptions().device(models::device_of(model));
  int64_t channels = 0;
  {
    torch::NoGradGuard no_grad;
    channels = model.forward(torch::zeros({1, 3, 64, 64}, on)).feature("decoder").size(1);
  }
  model.train(was_training);
  // Drawn on the CPU so that a seed gives the same head on every device.
  weight =
      (torch::randn({1, channels, 1, 1}) * std::sqrt(1.0 / double(channels))).to(on.device()).set_requires_grad(true);
  bias = torch::zeros({1}, on).set_requires_grad(true);
  return channels;
}

torch::Tensor DecoderHead::operator()(const torch::Tensor& features) const {
  return F::conv2d(features, weight, F::Conv2dFuncOptions().bias(bias));
}

void DecoderHead::save(torch::serialize::OutputArchive& a, const std::string& name) const {
  if (!defined()) return;
  a.write(name + "_weight", weight.detach());
  a.write(name + "_bias", bias.detach());
}

bool DecoderHead::load(torch::serialize::InputArchive& a, const std::string& name) {
  torch::Tensor w, b;
  if (!a.try_read(name + "_weight", w) || !a.try_read(name + "_bias", b)) return false;
  if (defined() && weight.sizes() == w.sizes()) {
    torch::NoGradGuard no_grad;
    weight.copy_(w);
    bias.copy_(b);
  } else {
    weight = w.clone().set_requires_grad(true);
    bias = b.clone().set_requires_grad(true);
  }
  return true;
}

}  // namespace cseg::methods
