#pragma once
/// Segmentation losses: tensors in, a scalar tensor out. logits [N, C, H, W], target [N, H, W]
/// int64 with 255 = ignore. Every loss averages over labelled pixels and returns 0 (with a graph)
/// when a batch has none, instead of NaN.
#include <torch/torch.h>

#include <vector>

#include "cseg/losses/options.h"

namespace cseg::losses {

constexpr int64_t kIgnore = 255;

/// Cross-entropy; `weights` (size >= C, sliced to C) weight each pixel by its target class and
/// normalise by the summed weights, as torch.nn.CrossEntropyLoss does.
torch::Tensor cross_entropy(const torch::Tensor& logits, const torch::Tensor& target,
                            const std::vector<double>& weights = {});

/// Focal loss (Lin et al. 2017): mean of w_t * (1 - p_t)^gamma * -log p_t. gamma = 0 gives CE.
torch::Tensor focal_loss(const torch::Tensor& logits, const torch::Tensor& target, double gamma,
                         const std::vector<double>& weights = {});

/// Soft Dice loss: 1 - mean over classes present in the target of 2|P∩T| / (|P| + |T|).
torch::Tensor dice_loss(const torch::Tensor& logits, const torch::Tensor& target);

/// Soft (Jaccard) IoU loss: 1 - mean over classes present of |P∩T| / |P∪T| on probabilities.
torch::Tensor soft_iou_loss(const torch::Tensor& logits, const torch::Tensor& target);

/// Top-k hard-pixel mining: CE averaged over the `keep` fraction of labelled pixels with the
/// highest loss (at least one pixel).
torch::Tensor ohem_cross_entropy(const torch::Tensor& logits, const torch::Tensor& target, double keep,
                                 const std::vector<double>& weights = {});

/// The loss `cfg.name` names.
torch::Tensor segmentation_loss(const LossOptions& cfg, const torch::Tensor& logits, const torch::Tensor& target);

}  // namespace cseg::losses
