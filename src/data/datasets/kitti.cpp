#include "cseg/data/datasets/kitti.h"

#include <algorithm>
#include <filesystem>

#include "cseg/core/error.h"
#include "cseg/data/datasets.h"
#include "cseg/data/label_spaces.h"

namespace fs = std::filesystem;

namespace cseg::data {

std::unique_ptr<Dataset> make_kitti(const DatasetOptions& cfg, const std::string& split) {
  CSEG_CHECK(split == "training" || split == "train" || split == "val",
             "kitti split '{}': the labelled splits are training (all 200 frames), train and val (160 / 40 of them)",
             split);
  const fs::path root(cfg.root);
  const fs::path images = root / "training" / "image_2", labels = root / "training" / "semantic";
  CSEG_CHECK(fs::is_directory(images) && fs::is_directory(labels),
             "kitti: '{}' and '{}' must be folders (dataset.root is the folder that holds training/ from "
             "data_semantics.zip)",
             images.string(), labels.string());
  std::vector<FileListDataset::Entry> all;
  for (const auto& f : fs::directory_iterator(images)) {
    if (f.path().extension() != ".png") continue;
    const auto mask = labels / f.path().filename();
    CSEG_CHECK(fs::is_regular_file(mask), "kitti: frame '{}' has no label map '{}'", f.path().string(), mask.string());
    FileListDataset::Entry e;
    e.id = f.path().stem().string();
    e.image_path = f.path().string();
    e.mask_path = mask.string();
    all.push_back(std::move(e));
  }
  CSEG_CHECK(!all.empty(), "kitti: no .png frames in '{}'", images.string());
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  std::vector<FileListDataset::Entry> entries;
  for (size_t i = 0; i < all.size(); ++i) {
    const bool in_val = i % 5 == 4;
    if (split == "training" || (split == "val") == in_val) entries.push_back(all[i]);
  }
  const auto& space = label_space("cityscapes");
  DatasetInfo info{"kitti", int(space.class_names.size()), space.class_names, space.palette};
  return std::make_unique<FileListDataset>(info, std::move(entries), cityscapes_label_table(),
                                           fmt::format("kitti split '{}' at {}", split, cfg.root));
}

}  // namespace cseg::data
