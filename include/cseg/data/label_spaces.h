#pragma once
/// Label spaces cseg knows: class names (index = dataset label; 0 is background where the CSS
/// papers use one) and the colour of each label, used by every image cseg writes (label PNGs,
/// overlays, TensorBoard images, reports). 255 (ignore) has a colour of its own in each palette.
#include <string>
#include <vector>

#include "cseg/data/image_io.h"

namespace cseg::data {

struct LabelSpace {
  std::string name;
  std::vector<std::string> class_names;  ///< one per label, background first where there is one
  Palette palette;                       ///< 256 entries: the labels, then unused, 255 = ignore
};

/// voc (21: background + 20), ade20k (151: unlabelled background + SceneParsing-150, mmsegmentation's
/// colours), cityscapes (19 train ids, the official colours), nyu40 (41: unlabelled + NYU-40, the
/// colours ScanNet and ASL use), fmnist_scenes (11: background + the 10 Fashion-MNIST classes).
/// Throws listing the known names for anything else.
const LabelSpace& label_space(const std::string& name);

/// nullptr when `name` is not a known label space.
const LabelSpace* find_label_space(const std::string& name);

std::vector<std::string> label_space_names();

}  // namespace cseg::data
