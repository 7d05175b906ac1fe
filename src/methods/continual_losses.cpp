#include "cseg/methods/continual_losses.h"

#include <atomic>
#include <cmath>
#include <limits>
#include <map>
#include <mutex>
#include <numeric>
#include <tuple>

#include "cseg/core/error.h"
#include "cseg/core/pixel_blocks.h"

namespace F = torch::nn::functional;

namespace cseg::methods {

torch::Tensor lwf_kd(const torch::Tensor& x, const torch::Tensor& x_old) {
  const int64_t c_old = x_old.size(1);
  auto log_p = torch::log_softmax(x.narrow(1, 0, c_old), 1);
  auto q = torch::softmax(x_old, 1);
  return -(q * log_p).mean(1).mean();
}

torch::Tensor onehot_bce(const torch::Tensor& x, const torch::Tensor& target) {
  const int64_t c = x.size(1);
  auto valid = target != 255;
  auto safe = torch::where(valid, target, torch::zeros_like(target));
  auto onehot = F::one_hot(safe, c).permute({0, 3, 1, 2}).to(x.scalar_type());
  auto per_pixel = F::binary_cross_entropy_with_logits(
                       x, onehot, F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kNone))
                       .sum(1);
  auto n = valid.sum();
  return (per_pixel * valid).sum() / n.clamp_min(1);
}

torch::Tensor sigmoid_kd(const torch::Tensor& x, const torch::Tensor& x_old) {
  return F::binary_cross_entropy_with_logits(x.narrow(1, 0, x_old.size(1)), torch::sigmoid(x_old));
}

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

/// The fused kernels below take CPU float32 logits; everything else (other devices, double,
/// half) takes the composite of ATen ops, which tests/methods/test_method.cpp also uses as
/// the reference for the fused path.
bool fused(const torch::Tensor& x) { return x.device().is_cpu() && x.scalar_type() == torch::kFloat && x.dim() == 4; }

/// Pixels per block of the kernels below (core/pixel_blocks.h).
constexpr int64_t kBlock = 256;

/// Runs body(image, first_pixel, pixels) -> double over every block on the intra-op threads and
/// returns the sum of the results, added in block order: the same whatever the thread count.
template <class Body>
double sum_over_blocks(int64_t images, int64_t hw, const Body& body) {
  const int64_t per_image = core::pixel_blocks(hw, kBlock);
  std::vector<double> partial(images * per_image, 0.0);
  core::for_each_pixel_block(images, hw, kBlock, [&](int64_t image, int64_t first, int64_t pixels) {
    partial[image * per_image + first / kBlock] = body(image, first, pixels);
  });
  double total = 0;
  for (double v : partial) total += v;
  return total;
}

/// One block of one image's logits x and probabilities p (p becomes the gradient in place):
/// channel k of the block's pixel j at [k * stride + j].
struct Block {
  const float* x;
  float* p;
  int64_t stride, pixels, channels;
  float& prob(int64_t k, int64_t j) const { return p[k * stride + j]; }
  float logit(int64_t k, int64_t j) const { return x[k * stride + j]; }

  /// Per pixel, the log-sum-exp of its logits without exponentials: softmax keeps the order of
  /// the logits, so the largest logit and the largest probability belong to one channel m, and
  /// p_m = exp(x_m - lse) >= 1/C gives lse = max x - log(max p) exactly.
  void log_sum_exp(float* __restrict lse) const {
    float top_p[kBlock];
    for (int64_t j = 0; j < pixels; ++j) top_p[j] = p[j], lse[j] = x[j];
    for (int64_t k = 1; k < channels; ++k) {
      const float* __restrict pk = p + k * stride;
      const float* __restrict xk = x + k * stride;
      for (int64_t j = 0; j < pixels; ++j) {
        top_p[j] = std::max(top_p[j], pk[j]);
        lse[j] = std::max(lse[j], xk[j]);
      }
    }
    for (int64_t j = 0; j < pixels; ++j) lse[j] -= std::log(top_p[j]);
  }

  /// Pixel j's log of sum_{k in set} p_k, when softmax underflowed for the whole set (the sum
  /// is tiny): from the logits. Also subtracts weight * each channel's share of that sum from
  /// its gradient, as the callers' common paths do with p_k / sum.
  float log_sum_from_logits(int64_t j, const std::vector<int64_t>& set, float lse, float weight) const {
    float top = -std::numeric_limits<float>::infinity();
    for (int64_t k : set) top = std::max(top, logit(k, j));
    float z = 0;
    for (int64_t k : set) z += std::exp(logit(k, j) - top);
    for (int64_t k : set) prob(k, j) -= weight * std::exp(logit(k, j) - top) / z;
    return top + std::log(z) - lse;
  }
};

/// The fused kernels' forward builds the gradient of the loss sum in place of the probabilities;
/// both are divided by `denom` (the mean's count), the gradient is saved for backward, and the
/// loss returned.
torch::Tensor finish_fused(AutogradContext* ctx, torch::Tensor grad, double sum, double denom) {
  grad.div_(denom);
  ctx->save_for_backward({grad});
  return torch::tensor(sum / denom, grad.options());
}

/// Their backward: the saved gradient times the incoming one (a loss weight, usually).
torch::Tensor saved_gradient(AutogradContext* ctx, const variable_list& grad_out) {
  return ctx->get_saved_variables()[0] * grad_out[0];
}

/// Below this, a group's summed probability is recomputed from the logits (softmax may have
/// flushed its members to zero).
constexpr float kTinySum = 1e-20f;

/// MiB's unbiased cross-entropy with its gradient computed in the same pass (saved for backward).
/// Per labelled pixel with target t: t < C_old: -log sum_{k<C_old} p_k, gradient p minus each old
/// channel's share of that sum; else -log p_t, gradient p - onehot(t). Mean over labelled pixels.
struct UnbiasedCrossEntropy : torch::autograd::Function<UnbiasedCrossEntropy> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& logits, const torch::Tensor& target,
                               int64_t num_old) {
    auto x = logits.detach().contiguous();
    auto p = torch::softmax(x, 1);  // vectorised; the kernel builds the gradient in place of it
    auto t = target.to(torch::kLong).contiguous();
    const int64_t n = x.size(0), c = x.size(1), hw = x.size(2) * x.size(3);
    CSEG_CHECK(t.dim() == 3 && t.size(0) == n && t.size(1) * t.size(2) == hw,
               "unbiased cross-entropy: labels [{}] do not match logits [{}]", fmt::join(t.sizes(), ", "),
               fmt::join(x.sizes(), ", "));
    const float* xd = x.data_ptr<float>();
    float* pd = p.data_ptr<float>();
    const int64_t* td = t.data_ptr<int64_t>();
    std::vector<int64_t> old_set(num_old);
    std::iota(old_set.begin(), old_set.end(), 0);
    std::atomic<int64_t> bad_label{-1}, labelled{0};
    const double sum = sum_over_blocks(n, hw, [&](int64_t image, int64_t first, int64_t pixels) {
      const Block blk{xd + image * c * hw + first, pd + image * c * hw + first, hw, pixels, c};
      const int64_t* tb = td + image * hw + first;
      float lse[kBlock], old_sum[kBlock], keep[kBlock];
      blk.log_sum_exp(lse);
      for (int64_t j = 0; j < pixels; ++j) old_sum[j] = 0;
      for (int64_t k = 0; k < num_old; ++k)
        for (int64_t j = 0; j < pixels; ++j) old_sum[j] += blk.prob(k, j);
      double loss = 0;
      int64_t count = 0;
      for (int64_t j = 0; j < pixels; ++j) {
        const int64_t label = tb[j];
        keep[j] = label != 255;
        if (label == 255) continue;
        if (label < 0 || label >= c) {
          bad_label = label;
          keep[j] = 0;
          continue;
        }
        ++count;
        if (label >= num_old) {
          loss -= blk.logit(label, j) - lse[j];
          blk.prob(label, j) -= 1;
          old_sum[j] = 0;  // no old-group term in its gradient
        } else if (old_sum[j] < kTinySum) {
          loss -= blk.log_sum_from_logits(j, old_set, lse[j], 1.f);
          old_sum[j] = 0;  // gradient done above
        } else {
          loss -= std::log(old_sum[j]);
        }
      }
      // Old-target pixels: p_k - p_k / sum = p_k (1 - 1 / sum) on the old channels.
      for (int64_t j = 0; j < pixels; ++j) old_sum[j] = old_sum[j] > 0 ? 1.f - 1.f / old_sum[j] : 1.f;
      for (int64_t k = 0; k < num_old; ++k)
        for (int64_t j = 0; j < pixels; ++j) blk.prob(k, j) *= old_sum[j] * keep[j];
      for (int64_t k = num_old; k < c; ++k)
        for (int64_t j = 0; j < pixels; ++j) blk.prob(k, j) *= keep[j];
      labelled += count;
      return loss;
    });
    CSEG_CHECK(bad_label < 0, "unbiased cross-entropy: label {} is neither a class (0..{}) nor 255 (ignore)",
               bad_label.load(), c - 1);
    return finish_fused(ctx, p, sum, double(std::max<int64_t>(1, labelled)));
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    return {saved_gradient(ctx, grad_out), torch::Tensor(), torch::Tensor()};
  }
};

/// MiB's unbiased distillation with its gradient computed in the same pass. Per pixel, with
/// B = {0} + the new channels and P_B = sum_{k in B} p_k: loss -(q_0 log P_B + sum_{k=1}^{C_old-1}
/// q_k log p_k) / C_old; gradient (p_k - q_0 p_k / P_B) / C_old on B, (p_k - q_k) / C_old on the
/// old channels. Mean over pixels.
struct UnbiasedDistillation : torch::autograd::Function<UnbiasedDistillation> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& logits, const torch::Tensor& old_logits) {
    auto x = logits.detach().contiguous();
    auto p = torch::softmax(x, 1);
    auto q = torch::softmax(old_logits.detach().to(torch::kFloat), 1).contiguous();
    const int64_t n = x.size(0), c = x.size(1), c_old = q.size(1), hw = x.size(2) * x.size(3);
    const float* xd = x.data_ptr<float>();
    const float* qd = q.data_ptr<float>();
    float* pd = p.data_ptr<float>();
    std::vector<int64_t> b_set{0};
    for (int64_t k = c_old; k < c; ++k) b_set.push_back(k);
    const double sum = sum_over_blocks(n, hw, [&](int64_t image, int64_t first, int64_t pixels) {
      const Block blk{xd + image * c * hw + first, pd + image * c * hw + first, hw, pixels, c};
      const float* qb = qd + image * c_old * hw + first;
      float lse[kBlock], b_sum[kBlock], dot[kBlock], q_old[kBlock];
      blk.log_sum_exp(lse);
      for (int64_t j = 0; j < pixels; ++j) b_sum[j] = blk.prob(0, j), dot[j] = 0, q_old[j] = 0;
      for (int64_t k = c_old; k < c; ++k)
        for (int64_t j = 0; j < pixels; ++j) b_sum[j] += blk.prob(k, j);
      // Old channels: q_k log p_k = q_k (x_k - lse); gradient p_k - q_k.
      for (int64_t k = 1; k < c_old; ++k)
        for (int64_t j = 0; j < pixels; ++j) {
          const float qk = qb[k * hw + j];
          dot[j] += qk * blk.logit(k, j);
          q_old[j] += qk;
          blk.prob(k, j) -= qk;
        }
      double loss = 0;
      for (int64_t j = 0; j < pixels; ++j) {
        const float q0 = qb[j];
        float log_b;
        if (b_sum[j] < kTinySum) {
          log_b = blk.log_sum_from_logits(j, b_set, lse[j], q0);
          b_sum[j] = 1.f;  // gradient done above
        } else {
          log_b = std::log(b_sum[j]);
          b_sum[j] = 1.f - q0 / b_sum[j];
        }
        loss -= q0 * log_b + dot[j] - q_old[j] * lse[j];
      }
      // The group B: p_k - q_0 p_k / P_B = p_k (1 - q_0 / P_B).
      for (int64_t k : b_set)
        for (int64_t j = 0; j < pixels; ++j) blk.prob(k, j) *= b_sum[j];
      return loss;
    });
    return finish_fused(ctx, p, sum, double(n * hw) * double(c_old));
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    return {saved_gradient(ctx, grad_out), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor unbiased_ce(const torch::Tensor& x, const torch::Tensor& target, int num_old) {
  if (num_old <= 0) return F::cross_entropy(x, target, F::CrossEntropyFuncOptions().ignore_index(255));
  CSEG_CHECK(num_old <= x.size(1), "unbiased cross-entropy: {} old classes but only {} channels", num_old, x.size(1));
  if (fused(x)) return UnbiasedCrossEntropy::apply(x, target, num_old);
  const int64_t c = x.size(1);
  auto den = torch::logsumexp(x, 1, true);
  auto bg = torch::logsumexp(x.narrow(1, 0, num_old), 1, true) - den;
  // Old-class channels 1..C_old-1 are never a target: any value works, keep their log-softmax.
  auto log_p = torch::cat({bg, x.narrow(1, 1, c - 1) - den}, 1);
  auto labels = torch::where(target < num_old, torch::zeros_like(target), target);
  return F::nll_loss(log_p, labels, F::NLLLossFuncOptions().ignore_index(255));
}

torch::Tensor unbiased_kd(const torch::Tensor& x, const torch::Tensor& x_old) {
  const int64_t c_old = x_old.size(1), c = x.size(1);
  CSEG_CHECK(x_old.dim() == 4 && x.dim() == 4 && c_old <= c && x_old.size(0) == x.size(0) &&
                 x_old.size(2) == x.size(2) && x_old.size(3) == x.size(3),
             "unbiased distillation: old logits [{}] do not fit new logits [{}]", fmt::join(x_old.sizes(), ", "),
             fmt::join(x.sizes(), ", "));
  if (fused(x)) return UnbiasedDistillation::apply(x, x_old);
  auto den = torch::logsumexp(x, 1);
  auto bg_and_new = c > c_old ? torch::cat({x.narrow(1, 0, 1), x.narrow(1, c_old, c - c_old)}, 1) : x.narrow(1, 0, 1);
  auto log_bg = torch::logsumexp(bg_and_new, 1) - den;          // [N, H, W]
  auto log_old = x.narrow(1, 1, c_old - 1) - den.unsqueeze(1);  // [N, C_old-1, H, W]
  auto q = torch::softmax(x_old, 1);
  auto per_pixel = (q.select(1, 0) * log_bg + (q.narrow(1, 1, c_old - 1) * log_old).sum(1)) / double(c_old);
  return -per_pixel.mean();
}

namespace {
/// Regions i of s along an axis of length `len` (the map's width is `width`), as `mode` cuts them.
std::vector<std::pair<int64_t, int64_t>> pod_regions(int64_t s, int64_t len, int64_t width, PodRegions mode) {
  std::vector<std::pair<int64_t, int64_t>> r;
  for (int64_t i = 0; i < s; ++i) {
    if (mode == PodRegions::reference) {
      const int64_t k = width / s, lo = i * k, hi = std::min((i + 1) * k, len);
      CSEG_CHECK(
          hi > lo,
          "local POD with the reference's regions: a map {} wide has no room along an axis of {} for "
          "region {} of scale {} (squares of side {} / {} = {}; the reference computes NaN there); use the covering "
          "regions: drop pod_regions from method_options.plop.faithful",
          width, len, i, s, width, s, k);
      r.emplace_back(lo, hi);
    } else {
      // [floor(i len / s), ceil((i+1) len / s)), never empty.
      const int64_t lo = std::min(i * len / s, len - 1);
      r.emplace_back(lo, std::max(lo + 1, std::min(((i + 1) * len + s - 1) / s, len)));
    }
  }
  return r;
}

/// The regions of every scale along one axis, scale by scale: position range and the scale's
/// index; and per scale how many of its regions hold each position (1, or 2 where neighbours
/// share it).
struct AxisRegions {
  struct Region {
    int64_t lo, hi, scale;
  };
  std::vector<Region> regions;
  std::vector<std::vector<float>> holders;  // [scale][position]
};

AxisRegions axis_regions(const std::vector<int>& scales, int64_t len, int64_t width, PodRegions mode) {
  AxisRegions a;
  for (size_t k = 0; k < scales.size(); ++k) {
    std::vector<float> holders(len, 0.f);
    for (const auto& [lo, hi] : pod_regions(scales[k], len, width, mode)) {
      a.regions.push_back({lo, hi, int64_t(k)});
      for (int64_t i = lo; i < hi; ++i) holders[i] += 1;
    }
    a.holders.push_back(std::move(holders));
  }
  return a;
}

/// One axis of length L pooled at every scale at once; S = the sum of the scales, one column per
/// region (scale by scale, region by region). mean [L, S]: a map times it averages each region
/// of its last axis. count [L, S]: how many regions of the column's scale hold position l (1 when
/// the scale divides L, 2 where neighbours share a position): the weight of a row of pooled
/// values, which appears once per region of the other axis holding it.
struct AxisPooling {
  torch::Tensor mean, count;
};

/// Built once per (scales, L): PLOP calls this for every map of every iteration.
AxisPooling axis_pooling(const std::vector<int>& scales, int64_t len, int64_t width, PodRegions mode,
                         const torch::TensorOptions& opts) {
  static std::mutex mutex;
  static std::map<std::tuple<std::vector<int>, int64_t, int64_t, PodRegions>, AxisPooling> cache;
  AxisPooling p;
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (mode == PodRegions::covering) width = 0;  // not used: one entry per length
    const auto key = std::make_tuple(scales, len, width, mode);
    auto it = cache.find(key);
    if (it == cache.end()) {
      const auto axis = axis_regions(scales, len, width, mode);
      const int64_t total = int64_t(axis.regions.size());
      auto mean = torch::zeros({len, total}, torch::kFloat), count = torch::zeros({len, total}, torch::kFloat);
      for (int64_t column = 0; column < total; ++column) {
        const auto& r = axis.regions[size_t(column)];
        mean.narrow(0, r.lo, r.hi - r.lo).select(1, column).fill_(1.0 / double(r.hi - r.lo));
        count.select(1, column).copy_(torch::tensor(axis.holders[size_t(r.scale)]));
      }
      it = cache.emplace(key, AxisPooling{mean, count}).first;
    }
    p = it->second;
  }
  return {p.mean.to(opts), p.count.to(opts)};  // no copy when already there
}

/// Local POD on CPU float maps with its gradient computed in the same pass (saved for backward):
/// the composite below runs some twenty small ATen ops forward and back, which cost more than
/// the arithmetic on PLOP's 12 x 12 maps. Per channel plane, d = old^2 - new^2; a width region
/// (columns lo..hi) of scale s gives, for each row h, A = mean of d[h, lo..hi), weighted by the
/// number of scale-s row regions holding h; height regions likewise. The image's squared norm Q
/// sums the weighted squares over its planes; dQ/dd spreads 2 * weight * A / (hi - lo) back over
/// the region, and the loss mean_n sqrt(Q_n) has gradient -new * dQ/dd / (N sqrt(Q_n)) (0 where
/// Q_n = 0, as the composite's guarded square root).
struct LocalPod : torch::autograd::Function<LocalPod> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& old_map, const torch::Tensor& new_map,
                               const std::vector<int>& scales, PodRegions mode) {
    auto o = old_map.detach().contiguous();
    auto v = new_map.detach().contiguous();
    const int64_t n = v.size(0), c = v.size(1), h = v.size(2), w = v.size(3);
    auto grad = torch::empty_like(v);
    const auto rows = axis_regions(scales, h, w, mode), columns = axis_regions(scales, w, w, mode);
    const float* od = o.data_ptr<float>();
    const float* vd = v.data_ptr<float>();
    float* gd = grad.data_ptr<float>();
    std::vector<double> plane_sum(n * c, 0.0);
    at::parallel_for(0, n * c, 1, [&](int64_t begin, int64_t end) {
      std::vector<float> d(h * w), g(h * w), acc(w);
      for (int64_t plane = begin; plane < end; ++plane) {
        const float* op = od + plane * h * w;
        const float* vp = vd + plane * h * w;
        for (int64_t i = 0; i < h * w; ++i) d[i] = op[i] * op[i] - vp[i] * vp[i], g[i] = 0.f;
        double q = 0;
        // Width regions: per row, the mean over the region's columns.
        for (int64_t y = 0; y < h; ++y) {
          const float* dr = d.data() + y * w;
          float* gr = g.data() + y * w;
          for (const auto& r : columns.regions) {
            const float weight = rows.holders[r.scale][y];
            float sum = 0.f;
            for (int64_t x = r.lo; x < r.hi; ++x) sum += dr[x];
            const float mean = sum / float(r.hi - r.lo);
            q += double(weight) * mean * mean;
            const float spread = 2.f * weight * mean / float(r.hi - r.lo);
            for (int64_t x = r.lo; x < r.hi; ++x) gr[x] += spread;
          }
        }
        // Height regions: per column, the mean over the region's rows (whole rows at a time).
        for (const auto& r : rows.regions) {
          const std::vector<float>& weight = columns.holders[r.scale];
          const float inv_len = 1.f / float(r.hi - r.lo);
          for (int64_t x = 0; x < w; ++x) acc[x] = 0.f;
          for (int64_t y = r.lo; y < r.hi; ++y)
            for (int64_t x = 0; x < w; ++x) acc[x] += d[y * w + x];
          for (int64_t x = 0; x < w; ++x) {
            const float mean = acc[x] * inv_len;
            q += double(weight[x]) * mean * mean;
            acc[x] = 2.f * weight[x] * mean * inv_len;
          }
          for (int64_t y = r.lo; y < r.hi; ++y)
            for (int64_t x = 0; x < w; ++x) g[y * w + x] += acc[x];
        }
        float* gp = gd + plane * h * w;
        for (int64_t i = 0; i < h * w; ++i) gp[i] = -vp[i] * g[i];
        plane_sum[plane] = q;
      }
    });
    // Per image, in channel order (the same whatever the thread count).
    double loss = 0;
    std::vector<float> scale(n);
    for (int64_t i = 0; i < n; ++i) {
      double q = 0;
      for (int64_t k = 0; k < c; ++k) q += plane_sum[i * c + k];
      const double norm = q > 0 ? std::sqrt(q) : 0.0;
      loss += norm;
      scale[i] = norm > 0 ? float(1.0 / (double(n) * norm)) : 0.f;
    }
    grad.mul_(torch::from_blob(scale.data(), {n, 1, 1, 1}, torch::kFloat));
    ctx->save_for_backward({grad});
    return torch::tensor(loss / double(n), grad.options());
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    return {torch::Tensor(), saved_gradient(ctx, grad_out), torch::Tensor(), torch::Tensor()};
  }
};
}  // namespace

torch::Tensor local_pod(const torch::Tensor& old_map, const torch::Tensor& new_map, const std::vector<int>& scales,
                        PodRegions regions) {
  CSEG_CHECK(old_map.sizes() == new_map.sizes(), "local POD: maps differ in shape ([{}] vs [{}])",
             fmt::join(old_map.sizes(), ", "), fmt::join(new_map.sizes(), ", "));
  if (fused(new_map) && old_map.device().is_cpu() && old_map.scalar_type() == torch::kFloat)
    return LocalPod::apply(old_map, new_map, scales, regions);
  // Pooling is linear: the difference of the two embeddings is the embedding of the difference
  // of the squared maps (NCHW: the teacher's channels-last maps would make the products slow).
  auto d = old_map.detach().contiguous().pow(2) - new_map.pow(2);
  const auto rows = axis_pooling(scales, d.size(2), d.size(3), regions, d.options());
  const auto columns = axis_pooling(scales, d.size(3), d.size(3), regions, d.options());
  // Region (i, j) of a scale holds, per channel, the width-pooled means of its rows and the
  // height-pooled means of its columns. All regions of all scales at once: width-pooled [N, C,
  // H, S] (column region j, every row), each row counted once per row region holding it; and
  // height-pooled [N, C, S, W] likewise. The embedding's squared norm sums both, weighted.
  auto by_width = torch::matmul(d, columns.mean);
  auto by_height = torch::matmul(rows.mean.t(), d);
  auto squared = (by_width.pow(2) * rows.count).sum({1, 2, 3}) + (by_height.pow(2) * columns.count.t()).sum({1, 2, 3});
  // The norm, with gradient 0 (not NaN) where two maps pool alike.
  auto nonzero = squared > 0;
  auto norm = torch::where(nonzero, torch::where(nonzero, squared, torch::ones_like(squared)).sqrt(),
                           torch::zeros_like(squared));
  return norm.mean();
}

torch::Tensor normalized_entropy(const torch::Tensor& logits) {
  auto log_p = torch::log_softmax(logits, 1);
  return -(log_p.exp() * log_p).sum(1) / std::log(double(logits.size(1)));
}

}  // namespace cseg::methods
