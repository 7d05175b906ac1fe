#pragma once
/// Consistency losses for unlabelled frames, added to the pseudo-label loss: what a prediction
/// must respect without any label. Both act on the student's logits of the training batch.
#include <torch/types.h>

namespace cseg::adaptation {

/// Maps of frame t+1 [N, C, H, W] brought to frame t's pixels by frame t's forward flow
/// [N, 2, H, W] (dx, dy in pixels): out(p) = next(p + flow(p)), bilinear, differentiable.
/// `inside` (optional) receives [N, H, W] bool: p + flow(p) lies within the map.
torch::Tensor warp_to_current(const torch::Tensor& next, const torch::Tensor& flow, torch::Tensor* inside = nullptr);

/// Temporal consistency: the student's prediction for frame t must match its prediction for
/// frame t+1 warped back by the flow. KL(warped next softmax || softmax(logits)) per pixel, the
/// next frame's side a target without gradient, averaged over the pixels where `valid`
/// ([N, H, W] bool: the flow holds) and the flow stays in the crop; 0 when there are none.
torch::Tensor temporal_consistency_loss(const torch::Tensor& logits, const torch::Tensor& next_logits,
                                        const torch::Tensor& flow, const torch::Tensor& valid);

/// Depth-edge consistency: two neighbouring pixels (right or below) on one surface, i.e. both
/// depths known (> 0) and |ln d1 - ln d2| < `edge` (a relative depth step), should get the same
/// prediction; class changes are left to depth edges. Mean total-variation distance
/// 0.5 * sum_c |p1 - p2| over such pairs (0 when there are none). logits [N, C, H, W], depth
/// [N, H, W] metres.
torch::Tensor depth_edge_loss(const torch::Tensor& logits, const torch::Tensor& depth, double edge);

}  // namespace cseg::adaptation
