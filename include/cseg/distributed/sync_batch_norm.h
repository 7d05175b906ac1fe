#pragma once
/// Synchronised BatchNorm for data-parallel training: batch statistics over the global batch
/// (all processes), as torch.nn.SyncBatchNorm. models::BatchNorm2d uses it in training mode while
/// a group is installed (train.sync_bn with more than one process).
#include <torch/types.h>

namespace cseg::distributed {

class ProcessGroup;

/// The group BatchNorm layers synchronise over; nullptr (the default) = local statistics.
void set_sync_batch_norm_group(ProcessGroup* group);
ProcessGroup* sync_batch_norm_group();

/// Training-mode batch norm of x [N, C, H, W] with the mean and (biased) variance of the whole
/// global batch; updates the running statistics in place (unbiased variance, `momentum`). The
/// backward pass all-reduces the two per-channel sums it needs, so every process computes the
/// gradient the global batch would give.
torch::Tensor sync_batch_norm(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                              torch::Tensor running_mean, torch::Tensor running_var, double momentum, double eps);

}  // namespace cseg::distributed
