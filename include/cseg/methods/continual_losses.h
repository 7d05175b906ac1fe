#pragma once
/// The loss functions of the continual methods, as free functions on tensors so each can be
/// tested on tiny inputs against values derived by hand (tests/methods/test_continual_losses.cpp).
/// Notation (docs/methods.md): x = current logits [N, C, H, W] over every class
/// seen so far (background 0), x_old = the old model's logits [N, C_old, H, W]; labels 255 =
/// ignore. The formulas follow MiB, PLOP and iCaRL as their papers and code define them.
#include <torch/torch.h>

#include <vector>

namespace cseg::methods {

/// LwF's distillation: -mean over pixels of mean over the C_old classes of
/// softmax(x_old)_c * log_softmax(x[:, :C_old])_c (class average, no temperature).
torch::Tensor lwf_kd(const torch::Tensor& x, const torch::Tensor& x_old);

/// iCaRL/LwF-MC classification: per-class binary cross-entropy on one-hot targets, summed over
/// classes and averaged over labelled pixels.
torch::Tensor onehot_bce(const torch::Tensor& x, const torch::Tensor& target);
/// LwF-MC distillation: mean binary cross-entropy between x[:, :C_old] and sigmoid(x_old).
torch::Tensor sigmoid_kd(const torch::Tensor& x, const torch::Tensor& x_old);

/// MiB's unbiased cross-entropy: background's log-probability = logsumexp over the background
/// and old classes; targets below C_old (old classes, absent from new labels) become background.
torch::Tensor unbiased_ce(const torch::Tensor& x, const torch::Tensor& target, int num_old);

/// MiB's unbiased distillation: the new model's background probability absorbs the new classes;
/// -mean over pixels of (q_0 log p_bg+new + sum_{c=1}^{C_old-1} q_c log p_c) / C_old.
torch::Tensor unbiased_kd(const torch::Tensor& x, const torch::Tensor& x_old);

/// How local POD cuts a map into an s x s grid of regions.
enum class PodRegions {
  /// Each axis by its own length: rows floor(i*H/s)..ceil((i+1)*H/s), columns likewise, so every
  /// position is in a region and non-square and small maps work (neighbours may share one).
  covering,
  /// PLOP's code: squares of side k = W / s (floor) from the top-left corner, rows cut by the
  /// width too (clipped to H); positions past s*k are left out. A region with no rows or columns
  /// (k = 0, or H <= (s-1)*k) is an error, where the reference computes NaN.
  reference,
};

/// PLOP's local POD between an old and a new feature map [N, C, H, W] (same shape): squared
/// maps; for every scale s, an s x s grid of regions; per region the width- and height-pooled
/// means concatenated; loss = per-image L2 norm of the difference, averaged over the batch.
torch::Tensor local_pod(const torch::Tensor& old_map, const torch::Tensor& new_map,
                        const std::vector<int>& scales = {1, 2, 4}, PodRegions regions = PodRegions::covering);

/// Entropy of softmax(x) over channels, divided by log(C): [N, H, W] in [0, 1].
torch::Tensor normalized_entropy(const torch::Tensor& logits);

}  // namespace cseg::methods
