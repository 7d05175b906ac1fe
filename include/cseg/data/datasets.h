#pragma once
/// Dataset registry: builds a dataset split from its config. One entry per on-disk layout.
#include <memory>
#include <string>
#include <vector>

#include "cseg/data/dataset.h"
#include "cseg/data/options.h"

namespace cseg::data {

/// Opens `split` of the dataset `cfg` names. Throws naming the root, split or list file.
///  - voc / fmnist_scenes: ROOT/ImageSets/Segmentation/<split>.txt (ids; masks in
///    SegmentationClass/ or SegmentationClassAug/) or ROOT/<split>.txt, ROOT/splits/<split>.txt with
///    "JPEGImages/x.jpg SegmentationClassAug/x.png" pairs (the MiB/PLOP train_aug layout).
///  - ade20k: ROOT/images/<training|validation>/*.jpg + annotations/ (split train/val accepted).
///  - cityscapes: leftImg8bit/<split>/<city>/*_leftImg8bit.png + gtFine/..._gtFine_labelIds.png,
///    label ids mapped to the 19 train ids. dataset.scenes keeps only those cities; the splits
///    cities_train / cities_val are the train+val images of the cities, shuffled with a fixed
///    seed and split 80/20 (PLOP's city tasks).
///  - folder: ROOT/<image_dir>/<id><image_ext>, ROOT/<mask_dir>/<id><mask_ext>, ids from
///    ROOT/splits/<split>.txt.
std::unique_ptr<Dataset> make_dataset(const DatasetOptions& cfg, const std::string& split);

/// The label space a dataset's labels are in (label_spaces.h), without opening it: the indoor
/// datasets (nyuv2, hypersim, scannet) share nyu40, a folder dataset names its own
/// (dataset.label_space, may be empty), the others are their own.
std::string label_space_name(const DatasetOptions& cfg);

/// PLOP's Cityscapes city order (city id -> name) for the domain-incremental city tasks.
const std::vector<std::string>& cityscapes_city_order();

/// Names make_dataset accepts (for the config, `cseg list` and error messages), from the
/// registry table in datasets.cpp.
std::vector<std::string> dataset_names();

/// Whether dataset `name` reads saliency maps (dataset.saliency_dir: voc, fmnist_scenes, folder).
bool dataset_reads_saliency(const std::string& name);

/// Reads a label map file (dataset.label_map): "raw label" per line, raw in 0..255, label in
/// 0..num_classes-1 or 255, # starts a comment; unlisted raw values map to kInvalid. Throws naming
/// the file and line.
std::array<int, 256> read_label_map(const std::string& path, int num_classes);

/// Cityscapes labelId (0..33) -> trainId (0..18, 255 ignored).
std::array<int, 256> cityscapes_label_table();

}  // namespace cseg::data
