#pragma once
/// KITTI semantic segmentation (the KITTI Vision Benchmark's "semantics" data, data_semantics.zip):
/// ROOT/training/image_2/<name>.png with ROOT/training/semantic/<name>.png, the labels in
/// Cityscapes' label ids, mapped to the 19 Cityscapes train ids as Cityscapes' are (label space
/// "cityscapes"; the other ids become 255). The same classes in another city and camera: a
/// Cityscapes-trained model adapts to it as a new domain.
///
/// KITTI publishes 200 labelled training frames and unlabelled test frames, and no validation
/// set. Splits: `training` (all 200), and a fixed division of them, `train` (160) and `val` (40:
/// every fifth frame in name order, the 5th, 10th, ...), so that a run can be validated without
/// touching frames it trains on. Frame sizes vary slightly (about 375 x 1242): evaluate with
/// eval.batch_size 1 or crop.
#include <memory>
#include <string>

#include "cseg/data/dataset.h"
#include "cseg/data/options.h"

namespace cseg::data {

std::unique_ptr<Dataset> make_kitti(const DatasetOptions& cfg, const std::string& split);

}  // namespace cseg::data
