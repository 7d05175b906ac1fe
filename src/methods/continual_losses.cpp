#include "cseg/methods/continual_losses.h"

#include <cmath>
#include <map>
#include <mutex>

#include "cseg/core/error.h"

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
  auto per_pixel = F::binary_cross_entropy_with_logits(x, onehot, F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kNone))
                       .sum(1);
  auto n = valid.sum();
  return (per_pixel * valid).sum() / n.clamp_min(1);
}

torch::Tensor sigmoid_kd(const torch::Tensor& x, const torch::Tensor& x_old) {
  return F::binary_cross_entropy_with_logits(x.narrow(1, 0, x_old.size(1)), torch::sigmoid(x_old));
}

torch::Tensor unbiased_ce(const torch::Tensor& x, const torch::Tensor& target, int num_old) {
  if (num_old <= 0) return F::cross_entropy(x, target, F::CrossEntropyFuncOptions().ignore_index(255));
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
  auto den = torch::logsumexp(x, 1);
  auto bg_and_new = c > c_old ? torch::cat({x.narrow(1, 0, 1), x.narrow(1, c_old, c - c_old)}, 1) : x.narrow(1, 0, 1);
  auto log_bg = torch::logsumexp(bg_and_new, 1) - den;                    // [N, H, W]
  auto log_old = x.narrow(1, 1, c_old - 1) - den.unsqueeze(1);            // [N, C_old-1, H, W]
  auto q = torch::softmax(x_old, 1);
  auto per_pixel = (q.select(1, 0) * log_bg + (q.narrow(1, 1, c_old - 1) * log_old).sum(1)) / double(c_old);
  return -per_pixel.mean();
}

namespace {
/// Regions i of s along an axis of length L: [floor(i L / s), ceil((i+1) L / s)), never empty
/// (neighbours may share a position when s does not divide L).
std::vector<std::pair<int64_t, int64_t>> pod_regions(int64_t s, int64_t len) {
  std::vector<std::pair<int64_t, int64_t>> r;
  for (int64_t i = 0; i < s; ++i) {
    const int64_t lo = std::min(i * len / s, len - 1);
    r.emplace_back(lo, std::max(lo + 1, std::min(((i + 1) * len + s - 1) / s, len)));
  }
  return r;
}

/// Mean over each region as a matrix [L, s] (a map times it pools its last axis), and the
/// positions of every region in order (each region's own positions, repeated where shared).
/// Built once per (s, L): PLOP calls this for every map of every iteration.
std::pair<torch::Tensor, torch::Tensor> pooling(int64_t s, int64_t len, const torch::TensorOptions& opts) {
  static std::mutex mutex;
  static std::map<std::pair<int64_t, int64_t>, std::pair<torch::Tensor, torch::Tensor>> cache;
  std::pair<torch::Tensor, torch::Tensor> p;
  {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = cache.find({s, len});
    if (it == cache.end()) {
      auto mean = torch::zeros({len, s}, torch::kFloat);
      std::vector<int64_t> positions;
      const auto regions = pod_regions(s, len);
      for (int64_t j = 0; j < s; ++j) {
        const auto [lo, hi] = regions[j];
        mean.narrow(0, lo, hi - lo).select(1, j).fill_(1.0 / double(hi - lo));
        for (int64_t x = lo; x < hi; ++x) positions.push_back(x);
      }
      it = cache.emplace(std::make_pair(s, len), std::make_pair(mean, torch::tensor(positions, torch::kLong))).first;
    }
    p = it->second;
  }
  return {p.first.to(opts), p.second.to(opts.device())};  // no copy when already there
}

/// For every scale s and every region (i, j) of its s x s grid, the region's width-pooled (C x its
/// rows) and height-pooled (C x its columns) means, concatenated: [N, D]. Pooling one axis by
/// regions is one matrix product for all regions at once; the other axis's regions then pick
/// their rows (or columns) of it. The values come in another order than region by region, which a
/// norm of the difference of two embeddings does not see.
torch::Tensor pod_embedding(const torch::Tensor& m, const std::vector<int>& scales) {
  const int64_t n = m.size(0), h = m.size(2), w = m.size(3);
  std::vector<torch::Tensor> parts;
  for (int s : scales) {
    const auto [by_columns, column_positions] = pooling(s, w, m.options());
    const auto [by_rows, row_positions] = pooling(s, h, m.options());
    // Regions that share no position (s divides the length) take every row once, in order.
    auto pick = [](const torch::Tensor& t, const torch::Tensor& positions) {
      return positions.numel() == t.size(2) ? t : t.index_select(2, positions);
    };
    // Width-pooled: [N, C, H, s] (column region j), then the rows of each row region i.
    parts.push_back(pick(torch::matmul(m, by_columns), row_positions).reshape({n, -1}));
    // Height-pooled: [N, C, W, s] (row region i), then the columns of each column region j.
    parts.push_back(pick(torch::matmul(m.transpose(2, 3), by_rows), column_positions).reshape({n, -1}));
  }
  return torch::cat(parts, 1);
}
}  // namespace

torch::Tensor local_pod(const torch::Tensor& old_map, const torch::Tensor& new_map, const std::vector<int>& scales) {
  CSEG_CHECK(old_map.sizes() == new_map.sizes(), "local POD: maps differ in shape ([{}] vs [{}])",
             fmt::join(old_map.sizes(), ", "), fmt::join(new_map.sizes(), ", "));
  // Pooling is linear: the difference of the two embeddings is the embedding of the difference
  // of the squared maps, computed once.
  return pod_embedding(old_map.detach().pow(2) - new_map.pow(2), scales).norm(2, 1).mean();
}

torch::Tensor normalized_entropy(const torch::Tensor& logits) {
  auto log_p = torch::log_softmax(logits, 1);
  return -(log_p.exp() * log_p).sum(1) / std::log(double(logits.size(1)));
}

}  // namespace cseg::methods
