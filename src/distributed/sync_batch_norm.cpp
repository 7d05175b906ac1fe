#include "cseg/distributed/sync_batch_norm.h"

#include <torch/autograd.h>

#include "cseg/core/error.h"
#include "cseg/distributed/process_group.h"

namespace cseg::distributed {

namespace {

// Per thread: a process trains on one thread (CPU backward runs on the caller), and tests run
// several ranks as threads of one process.
thread_local ProcessGroup* g_group = nullptr;

torch::Tensor channel(const torch::Tensor& v) { return v.view({1, -1, 1, 1}); }

/// y = (x - mean) * invstd * weight + bias with global statistics. The gradients:
///   dx = invstd * (g - mean(g) - xhat * mean(g * xhat)),  g = dy * weight,
/// means over the global batch (two all-reduced sums); dweight, dbias are local sums (the
/// gradient averaging after backward combines them as for any parameter).
struct SyncBatchNormFunction : torch::autograd::Function<SyncBatchNormFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor x, torch::Tensor weight,
                               torch::Tensor bias, torch::Tensor running_mean, torch::Tensor running_var,
                               double momentum, double eps) {
    const int64_t c = x.size(1);
    // Two all-reduces, accumulated in double as ATen's own batch norm does on CPU: the per-channel
    // sum (with the pixel count), then the sum of squared deviations from the global mean. In
    // float32, or in one pass with the sum of squares, the error on nearly constant channels
    // (pooled features of a few images) is amplified by up to 1/sqrt(eps) in the output.
    const auto dbl = torch::kDouble;
    auto sums =
        torch::cat({x.sum({0, 2, 3}, false, dbl), torch::full({1}, double(x.numel() / c), x.options().dtype(dbl))});
    std::vector<torch::Tensor> buffer{sums};
    g_group->all_reduce_sum(buffer);
    const double count = sums[c].item<double>();
    CSEG_CHECK(count > 1, "synchronised BatchNorm needs more than one value per channel over the global batch");
    const auto mean = (sums.slice(0, 0, c) / count).to(x.scalar_type());
    auto squares = (x - channel(mean)).pow(2).sum({0, 2, 3}, false, dbl);
    buffer = {squares};
    g_group->all_reduce_sum(buffer);
    const auto var = (squares / count).to(x.scalar_type());
    const auto invstd = (var + eps).rsqrt();
    {
      torch::NoGradGuard no_grad;
      running_mean.mul_(1 - momentum).add_(mean, momentum);
      running_var.mul_(1 - momentum).add_(var * (count / (count - 1)), momentum);
    }
    const auto xhat = (x - channel(mean)) * channel(invstd);
    ctx->save_for_backward({xhat, weight, invstd});
    ctx->saved_data["count"] = count;
    return xhat * channel(weight) + channel(bias);
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& xhat = saved[0];
    const auto& weight = saved[1];
    const auto& invstd = saved[2];
    const double count = ctx->saved_data["count"].toDouble();
    const auto dy = grads[0];
    const int64_t c = xhat.size(1);
    const auto g = dy * channel(weight);
    auto sums = torch::cat({g.sum({0, 2, 3}, false, torch::kDouble), (g * xhat).sum({0, 2, 3}, false, torch::kDouble)});
    std::vector<torch::Tensor> buffer{sums};
    g_group->all_reduce_sum(buffer);
    const auto mean_g = (sums.slice(0, 0, c) / count).to(g.scalar_type());
    const auto mean_gx = (sums.slice(0, c, 2 * c) / count).to(g.scalar_type());
    const auto dx = (g - channel(mean_g) - xhat * channel(mean_gx)) * channel(invstd);
    return {dx,
            (dy * xhat).sum({0, 2, 3}),
            dy.sum({0, 2, 3}),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor()};
  }
};

}  // namespace

void set_sync_batch_norm_group(ProcessGroup* group) { g_group = group; }
ProcessGroup* sync_batch_norm_group() { return g_group; }

torch::Tensor sync_batch_norm(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                              torch::Tensor running_mean, torch::Tensor running_var, double momentum, double eps) {
  CSEG_CHECK(g_group, "sync_batch_norm without a process group");
  return SyncBatchNormFunction::apply(x, weight, bias, running_mean, running_var, momentum, eps);
}

}  // namespace cseg::distributed
