#pragma once
/// What a dataset is and how training images are augmented: the options the data layer reads.
/// The experiment config (config/experiment.h, keys `dataset` and `augment`) parses YAML into
/// them; defaults live here, in the declarations.
#include <string>
#include <vector>

namespace cseg::data {

struct DatasetOptions {
  std::string name = "fmnist_scenes";  ///< voc | ade20k | cityscapes | folder | fmnist_scenes
  std::string root;                    ///< dataset root folder (use ${data_root} from the env file)
  std::string train_split = "train";   ///< split (list) names; VOC: train_aug, train, val, ...
  std::string val_split = "val";
  std::string test_split = "val";
  std::string cache_dir;  ///< filtered index lists; default <output_dir>/../.cache
  /// Saliency maps (<id>.png, > 0 = salient) for SSUL: "auto" = <root>/SaliencyMap when it
  /// exists (VOC layout, FMNIST-Scenes), "" = none, or a folder (relative to root).
  std::string saliency_dir = "auto";
  // Generic folder datasets only:
  int num_classes = 0;  ///< classes including background 0
  std::vector<std::string> class_names;
  /// Names (when class_names is empty) and colours from a known label space: voc, ade20k,
  /// cityscapes, nyu40, fmnist_scenes. Empty: generic names in the VOC colours.
  std::string label_space;
  std::string image_dir = "images", mask_dir = "masks", image_ext = ".jpg", mask_ext = ".png";
  /// Folder datasets: a file mapping the masks' raw values to labels, one "raw label" pair per
  /// line (# comments); values it does not list are an error. E.g. COCO-Stuff's PNGs to NYU-40
  /// for pre-training an indoor model: configs/label_maps/coco_stuff_to_nyu40.txt.
  std::string label_map;
  /// hypersim, scannet: only these scenes (e.g. ai_001_001, scene0000_00); empty = all of the split.
  std::vector<std::string> scenes;
};

struct AugmentOptions {
  int crop_size = 512;  ///< square training crop; padded with 255 (labels) / mean
  double scale_min = 0.5, scale_max = 2.0;
  bool hflip = true;
  std::vector<double> mean{0.485, 0.456, 0.406};  ///< ImageNet statistics, RGB in [0,1]
  std::vector<double> std{0.229, 0.224, 0.225};
};

}  // namespace cseg::data
