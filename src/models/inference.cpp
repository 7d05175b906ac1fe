#include "cseg/models/inference.h"

#include <optional>

#include "cseg/core/error.h"
#include "cseg/models/layers.h"

namespace cseg::models {

namespace {

/// The statistics and affine parameters of a norm layer that can be folded.
struct NormView {
  torch::Tensor weight, bias, mean, var;
  double eps;
  bool* folded;
};

std::optional<NormView> as_norm(torch::nn::Module& m) {
  if (auto* bn = dynamic_cast<BatchNorm2dImpl*>(&m); bn && !bn->folded)
    return NormView{bn->weight, bn->bias, bn->running_mean, bn->running_var, bn->eps, &bn->folded};
  if (auto* bn = dynamic_cast<FrozenBatchNorm2dImpl*>(&m); bn && !bn->folded)
    return NormView{bn->weight, bn->bias, bn->running_mean, bn->running_var, bn->eps, &bn->folded};
  return std::nullopt;
}

void fold(ConvImpl& conv, const NormView& n) {
  torch::NoGradGuard no_grad;
  auto scale = n.weight / torch::sqrt(n.var + n.eps);
  conv.weight.mul_(scale.reshape({-1, 1, 1, 1}));
  if (!conv.bias.defined()) conv.set_bias(torch::zeros_like(n.mean));
  conv.bias.copy_((conv.bias - n.mean) * scale + n.bias);
  *n.folded = true;
}

}  // namespace

int fold_batch_norm(torch::nn::Module& model) {
  CSEG_CHECK(!model.is_training(),
             "fold_batch_norm: put the model in eval mode first (its batch norms must use "
             "their running statistics)");
  int count = 0;
  auto visit = [&](torch::nn::Module& parent) {
    auto children = parent.children();
    for (size_t i = 0; i + 1 < children.size(); ++i) {
      auto* conv = dynamic_cast<ConvImpl*>(children[i].get());
      if (!conv) continue;
      if (auto norm = as_norm(*children[i + 1])) {
        fold(*conv, *norm);
        ++count;
      }
    }
  };
  visit(model);
  for (const auto& m : model.modules(/*include_self=*/false)) visit(*m);
  return count;
}

void to_channels_last(torch::nn::Module& model) {
  torch::NoGradGuard no_grad;
  for (auto& p : model.parameters())
    if (p.dim() == 4) p.set_data(p.contiguous(torch::MemoryFormat::ChannelsLast));
  for (auto& b : model.buffers())
    if (b.dim() == 4) b.set_data(b.contiguous(torch::MemoryFormat::ChannelsLast));
}

void prepare_for_inference(Segmenter& model) {
  model.eval();
  model.set_feature_taps(false);
  fold_batch_norm(model);
  to_channels_last(model);
}

std::shared_ptr<Segmenter> inference_copy(const Segmenter& model, bool feature_taps) {
  auto copy = model.make_like();
  copy->to(device_of(model));
  copy_state(*copy, model);
  for (auto& p : copy->parameters()) p.set_requires_grad(false);
  prepare_for_inference(*copy);
  copy->set_feature_taps(feature_taps);
  return copy;
}

ModelOutput float_logits(ModelOutput out) {
  auto to_float = [](torch::Tensor& t) {
    if (t.defined() && t.scalar_type() != torch::kFloat) t = t.to(torch::kFloat);
  };
  to_float(out.logits);
  to_float(out.aux_logits);
  if (auto it = out.features.find("logits_lowres"); it != out.features.end()) to_float(it->second);
  return out;
}

}  // namespace cseg::models
