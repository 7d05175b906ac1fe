#pragma once
/// Per-sample augmentation on OpenCV images: random scale, crop padded with 255, flip.
#include <array>
#include <random>

#include "cseg/data/dataset.h"
#include "cseg/data/options.h"

namespace cseg::data {

/// Remaps mask labels through `lut` (256 entries): how scenarios relabel a step's data.
void remap_labels(cv::Mat& mask, const std::array<uint8_t, 256>& lut);

/// Training augmentation: scale in [scale_min, scale_max] (bilinear image, nearest mask), pad to
/// crop_size (image with the mean colour, mask with 255), random crop, horizontal flip. The
/// sample's other maps (saliency, depth, next frame, flow) follow the same geometry: depth and
/// masks nearest and padded as unknown, the flow's vectors scaled with the image and mirrored
/// with it.
void augment_train(Sample& sample, const AugmentOptions& cfg, std::mt19937_64& rng);

}  // namespace cseg::data
