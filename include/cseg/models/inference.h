#pragma once
/// Inference-only rewrites of a trained model: they change how a forward pass is computed, not
/// what it computes (within float rounding), and the rewritten model can no longer train.
#include <torch/torch.h>

#include "cseg/models/segmenter.h"

namespace cseg::models {

/// Folds every batch norm into the convolution whose output it normalises:
///   W' = W * g / sqrt(v + eps),  b' = (b - m) * g / sqrt(v + eps) + beta
/// (g, beta: affine weight and bias; m, v: running statistics). A norm layer is folded when it is
/// registered directly after a convolution in the same module, the order in which every cseg
/// model registers a conv and the norm applied to its output (tests/models/test_inference.cpp checks
/// each model's output is unchanged). The folded norm layers become pass-throughs that refuse to
/// train, so fold a copy, not the model being trained. Returns the number of layers folded.
int fold_batch_norm(torch::nn::Module& model);

/// Stores every 4-D parameter and buffer in channels-last (NHWC) order, which oneDNN prefers for
/// some convolutions; feed inputs with x.contiguous(torch::MemoryFormat::ChannelsLast).
void to_channels_last(torch::nn::Module& model);

/// Readies a model that will only predict: eval mode, batch norms folded, no feature taps, and
/// channels-last weights (inputs may stay NCHW: a channels-last weight makes oneDNN compute in
/// NHWC, and the outputs come out channels-last).
void prepare_for_inference(Segmenter& model);

/// A frozen copy of `model` that only predicts, on the model's device: its weights without
/// gradients, readied by prepare_for_inference, with feature taps if asked (the teacher of a
/// continual step, which distillation methods read intermediate maps of).
std::shared_ptr<Segmenter> inference_copy(const Segmenter& model, bool feature_taps);

/// Under bf16 autocast the logits come out bfloat16; every loss (cross-entropy, distillation
/// softmaxes) then computes in float, as mixed-precision training does on GPUs too. A no-op in
/// float32. (Converts logits, aux_logits and the "logits_lowres" tap.)
ModelOutput float_logits(ModelOutput out);

}  // namespace cseg::models
