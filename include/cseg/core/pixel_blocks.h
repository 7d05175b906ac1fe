#pragma once
/// The loop cseg's hand-written CPU kernels share: every image's pixels cut into blocks of
/// consecutive pixels, the blocks spread over LibTorch's intra-op threads. A kernel walks its
/// block channel by channel, so one block's running values stay in L1 while each channel plane
/// is read in turn (going pixel by pixel would read C planes 4 KiB multiples apart at once).
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>

namespace cseg::core {

/// Number of blocks of `block` pixels that cover `hw` pixels.
inline int64_t pixel_blocks(int64_t hw, int64_t block) { return (hw + block - 1) / block; }

/// Calls body(image, first_pixel, pixels) once for every block of every image, from the intra-op
/// threads in any order; block b of image i starts at pixel b * block.
template <class Body>
void for_each_pixel_block(int64_t images, int64_t hw, int64_t block, const Body& body) {
  const int64_t per_image = pixel_blocks(hw, block);
  at::parallel_for(0, images * per_image, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const int64_t first = (b % per_image) * block;
      body(b / per_image, first, std::min(block, hw - first));
    }
  });
}

}  // namespace cseg::core
