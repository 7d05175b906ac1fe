#include "cseg/models/predictions.h"

#include <cmath>

#include "cseg/core/pixel_blocks.h"

namespace cseg::models {

namespace {

/// Pixels per block (core/pixel_blocks.h): the running maximum and its index stay in L1.
constexpr int64_t kBlock = 512;

/// Planar logits: x points at image n's first channel plane; channel c of pixel j is x[c * hw + j].
void argmax_planar(const float* x, int64_t channels, int64_t hw, int64_t first, int64_t count, int64_t* out) {
  float best[kBlock];
  int32_t index[kBlock];
  const float* p = x + first;
  for (int64_t j = 0; j < count; ++j) {
    best[j] = p[j];
    index[j] = 0;
  }
  for (int64_t c = 1; c < channels; ++c) {
    const float* q = x + c * hw + first;
    for (int64_t j = 0; j < count; ++j) {
      const float v = q[j], b = best[j];
      // Strictly greater keeps the first maximum; a NaN beats any number and no later value
      // beats a NaN (argmax's rule).
      const bool take = v > b || (std::isnan(v) && !std::isnan(b));
      best[j] = take ? v : b;
      index[j] = take ? int32_t(c) : index[j];
    }
  }
  for (int64_t j = 0; j < count; ++j) out[first + j] = index[j];
}

/// Channels-last logits: the channels of pixel j are x[j * channels + c], contiguous.
void argmax_interleaved(const float* x, int64_t channels, int64_t first, int64_t count, int64_t* out) {
  for (int64_t j = first; j < first + count; ++j) {
    const float* v = x + j * channels;
    float b = v[0];
    int64_t k = 0;
    for (int64_t c = 1; c < channels && !std::isnan(b); ++c)
      if (v[c] > b || std::isnan(v[c])) {
        b = v[c];
        k = c;
      }
    out[j] = k;
  }
}

}  // namespace

torch::Tensor predicted_classes(const torch::Tensor& logits, int64_t dim) {
  const bool fast = logits.device().is_cpu() && logits.scalar_type() == torch::kFloat && logits.dim() == 4 &&
                    (dim == 1 || dim == -3) && logits.size(1) > 0;
  const bool planar = fast && logits.is_contiguous();
  const bool interleaved = fast && !planar && logits.is_contiguous(torch::MemoryFormat::ChannelsLast);
  if (!planar && !interleaved) return std::get<1>(logits.max(dim));  // already several times argmax's speed
  const int64_t n = logits.size(0), c = logits.size(1), hw = logits.size(2) * logits.size(3);
  auto out = torch::empty({n, logits.size(2), logits.size(3)}, logits.options().dtype(torch::kLong));
  const float* x = logits.data_ptr<float>();
  int64_t* o = out.data_ptr<int64_t>();
  core::for_each_pixel_block(n, hw, kBlock, [&](int64_t image, int64_t first, int64_t count) {
    if (planar)
      argmax_planar(x + image * c * hw, c, hw, first, count, o + image * hw);
    else
      argmax_interleaved(x + image * c * hw, c, first, count, o + image * hw);
  });
  return out;
}

}  // namespace cseg::models
