#include "cseg/data/datasets.h"

#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>

#include "cseg/core/error.h"
#include "cseg/data/datasets/indoor.h"
#include "cseg/data/datasets/kitti.h"
#include "cseg/data/label_spaces.h"

namespace fs = std::filesystem;

namespace cseg::data {

namespace {

std::vector<std::string> read_lines(const fs::path& file) {
  std::ifstream in(file);
  CSEG_CHECK(in.good(), "cannot read split list '{}'", file.string());
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

DatasetInfo info_of(const std::string& name) {
  const auto& space = label_space(name);
  return {name, int(space.class_names.size()), space.class_names, space.palette};
}

void require_root(const DatasetOptions& cfg) {
  CSEG_CHECK(fs::is_directory(cfg.root), "dataset root '{}' (dataset '{}') does not exist or is not a folder", cfg.root,
             cfg.name);
}

std::string strip_slash(std::string s) {
  while (!s.empty() && s.front() == '/') s.erase(s.begin());
  return s;
}

/// VOC and everything written in its layout (FMNIST-Scenes).
/// Saliency maps (SSUL): <dir>/<id>.png for every entry; dataset.saliency_dir "auto" uses
/// <root>/SaliencyMap when it exists.
void attach_saliency(const DatasetOptions& cfg, std::vector<FileListDataset::Entry>& entries) {
  const fs::path root(cfg.root);
  fs::path saliency;
  if (cfg.saliency_dir == "auto") {
    if (fs::is_directory(root / "SaliencyMap")) saliency = root / "SaliencyMap";
  } else if (!cfg.saliency_dir.empty()) {
    saliency = fs::path(cfg.saliency_dir).is_absolute() ? fs::path(cfg.saliency_dir) : root / cfg.saliency_dir;
    CSEG_CHECK(fs::is_directory(saliency), "dataset.saliency_dir '{}' is not a folder", saliency.string());
  }
  if (!saliency.empty())
    for (auto& e : entries) e.saliency_path = (saliency / (e.id + ".png")).string();
}

std::unique_ptr<Dataset> make_voc_layout(const DatasetOptions& cfg, const std::string& split, DatasetInfo info) {
  require_root(cfg);
  const fs::path root(cfg.root);
  const std::vector<fs::path> candidates{root / "ImageSets" / "Segmentation" / (split + ".txt"),
                                         root / (split + ".txt"), root / "splits" / (split + ".txt")};
  fs::path list;
  for (const auto& c : candidates)
    if (fs::exists(c)) {
      list = c;
      break;
    }
  CSEG_CHECK(!list.empty(), "{} split '{}': no list file; looked for {}, {} and {}", info.name, split,
             candidates[0].string(), candidates[1].string(), candidates[2].string());
  std::vector<FileListDataset::Entry> entries;
  const bool aug_only = !fs::exists(root / "SegmentationClass") && fs::exists(root / "SegmentationClassAug");
  for (const auto& line : read_lines(list)) {
    std::istringstream ss(line);
    std::string a, b;
    ss >> a >> b;
    FileListDataset::Entry e;
    if (b.empty()) {  // plain id
      e.id = a;
      e.image_path = (root / "JPEGImages" / (a + ".jpg")).string();
      e.mask_path = (root / (aug_only ? "SegmentationClassAug" : "SegmentationClass") / (a + ".png")).string();
    } else {  // "image mask" pair, relative to the root
      e.image_path = (root / strip_slash(a)).string();
      e.mask_path = (root / strip_slash(b)).string();
      e.id = fs::path(a).stem().string();
    }
    entries.push_back(std::move(e));
  }
  attach_saliency(cfg, entries);
  if (fs::is_directory(root / "Depth"))  // FMNIST-Scenes video sequences
    for (auto& e : entries) e.depth_path = (root / "Depth" / (e.id + ".png")).string();
  int n = info.num_classes;
  auto dataset = std::make_unique<FileListDataset>(
      std::move(info), std::move(entries), FileListDataset::identity_table(n),
      fmt::format("{} split '{}' at {} (list {})", cfg.name, split, cfg.root, list.string()));
  // Video sequences (FMNIST-Scenes --frames): one line of frame ids per sequence.
  const fs::path sequences = root / "ImageSets" / "Sequences" / (split + ".txt");
  if (fs::exists(sequences)) {
    std::vector<std::vector<std::string>> ids;
    for (const auto& line : read_lines(sequences)) {
      std::istringstream ss(line);
      ids.emplace_back();
      for (std::string id; ss >> id;) ids.back().push_back(id);
    }
    dataset->set_sequences(ids);
  }
  return dataset;
}

std::unique_ptr<Dataset> make_ade20k(const DatasetOptions& cfg, const std::string& split) {
  require_root(cfg);
  std::string dir = split == "train" ? "training" : split == "val" ? "validation" : split;
  const fs::path images = fs::path(cfg.root) / "images" / dir;
  const fs::path labels = fs::path(cfg.root) / "annotations" / dir;
  CSEG_CHECK(fs::is_directory(images), "ade20k split '{}': folder '{}' does not exist (splits: training, validation)",
             split, images.string());
  std::vector<FileListDataset::Entry> entries;
  for (const auto& f : fs::directory_iterator(images)) {
    if (f.path().extension() != ".jpg") continue;
    std::string stem = f.path().stem().string();
    entries.push_back({stem, f.path().string(), (labels / (stem + ".png")).string()});
  }
  std::sort(entries.begin(), entries.end(), [](auto& x, auto& y) { return x.id < y.id; });
  DatasetInfo info = info_of("ade20k");
  return std::make_unique<FileListDataset>(info, std::move(entries), FileListDataset::identity_table(151),
                                           fmt::format("ade20k split '{}' at {}", split, cfg.root));
}

/// The frames of one Cityscapes split folder (leftImg8bit/<split>), optionally only `cities`.
std::vector<FileListDataset::Entry> cityscapes_entries(const fs::path& root, const std::string& split,
                                                       const std::set<std::string>& cities) {
  const fs::path images = root / "leftImg8bit" / split;
  const fs::path labels = root / "gtFine" / split;
  const std::string suffix = "_leftImg8bit.png";
  std::vector<FileListDataset::Entry> entries;
  if (!fs::is_directory(images)) return entries;
  for (const auto& city : fs::directory_iterator(images)) {
    if (!city.is_directory() || (!cities.empty() && !cities.count(city.path().filename().string()))) continue;
    for (const auto& f : fs::directory_iterator(city.path())) {
      std::string name = f.path().filename().string();
      if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
        continue;
      std::string stem = name.substr(0, name.size() - suffix.size());
      entries.push_back({stem, f.path().string(),
                         (labels / city.path().filename() / (stem + "_gtFine_labelIds.png")).string(), "", ""});
    }
  }
  std::sort(entries.begin(), entries.end(), [](auto& x, auto& y) { return x.id < y.id; });
  return entries;
}

std::unique_ptr<Dataset> make_cityscapes(const DatasetOptions& cfg, const std::string& split) {
  require_root(cfg);
  const fs::path root(cfg.root);
  const std::set<std::string> cities(cfg.scenes.begin(), cfg.scenes.end());
  std::vector<FileListDataset::Entry> entries;
  std::string what = fmt::format("cityscapes split '{}' at {}", split, cfg.root);
  if (split == "cities_train" || split == "cities_val") {
    // City tasks (PLOP's domain-incremental protocol): the train and val images of the chosen
    // cities, shuffled with a fixed seed and split 80/20.
    for (const char* official : {"train", "val"}) {
      auto part = cityscapes_entries(root, official, cities);
      entries.insert(entries.end(), part.begin(), part.end());
    }
    std::sort(entries.begin(), entries.end(), [](auto& x, auto& y) { return x.id < y.id; });
    std::mt19937_64 rng(0xC17E5);
    std::shuffle(entries.begin(), entries.end(), rng);
    const size_t n_train = (entries.size() * 8 + 5) / 10;
    if (split == "cities_train")
      entries.resize(n_train);
    else
      entries.erase(entries.begin(), entries.begin() + long(n_train));
  } else {
    CSEG_CHECK(fs::is_directory(root / "leftImg8bit" / split),
               "cityscapes split '{}': folder '{}' does not exist (splits: train, val, test; city tasks: "
               "cities_train, cities_val)",
               split, (root / "leftImg8bit" / split).string());
    entries = cityscapes_entries(root, split, cities);
  }
  for (const auto& c : cities) {
    bool found = false;
    for (const char* official : {"train", "val", "test"})
      found = found || fs::is_directory(root / "leftImg8bit" / official / c);
    CSEG_CHECK(found, "cityscapes: city '{}' (dataset.scenes) is in none of leftImg8bit/{{train,val,test}} under {}", c,
               cfg.root);
  }
  if (!cities.empty()) what += fmt::format(", cities {}", fmt::join(cfg.scenes, " "));
  DatasetInfo info = info_of("cityscapes");
  return std::make_unique<FileListDataset>(info, std::move(entries), cityscapes_label_table(), what);
}

std::unique_ptr<Dataset> make_folder(const DatasetOptions& cfg, const std::string& split) {
  require_root(cfg);
  CSEG_CHECK(cfg.num_classes >= 2 && cfg.num_classes <= 255,
             "dataset 'folder' needs dataset.num_classes between 2 and 255 (got {})", cfg.num_classes);
  const fs::path root(cfg.root);
  const fs::path list = root / "splits" / (split + ".txt");
  CSEG_CHECK(fs::exists(list), "folder dataset split '{}': list file '{}' does not exist", split, list.string());
  std::vector<FileListDataset::Entry> entries;
  for (const auto& id : read_lines(list))
    entries.push_back({id, (root / cfg.image_dir / (id + cfg.image_ext)).string(),
                       (root / cfg.mask_dir / (id + cfg.mask_ext)).string()});
  // Names and colours: dataset.class_names, else those of dataset.label_space, else generic names
  // in the VOC colours.
  const LabelSpace* space = cfg.label_space.empty() ? nullptr : &label_space(cfg.label_space);
  DatasetInfo info{"folder", cfg.num_classes, cfg.class_names, space ? space->palette : voc_palette()};
  if (info.class_names.empty() && space) {
    CSEG_CHECK(int(space->class_names.size()) >= cfg.num_classes,
               "dataset.label_space '{}' names {} classes, fewer than dataset.num_classes = {}", space->name,
               space->class_names.size(), cfg.num_classes);
    info.class_names.assign(space->class_names.begin(), space->class_names.begin() + cfg.num_classes);
  }
  if (info.class_names.empty())
    for (int c = 0; c < cfg.num_classes; ++c)
      info.class_names.push_back(c == 0 ? "background" : fmt::format("class_{}", c));
  CSEG_CHECK(static_cast<int>(info.class_names.size()) == cfg.num_classes,
             "dataset.class_names has {} names for dataset.num_classes = {}", info.class_names.size(), cfg.num_classes);
  attach_saliency(cfg, entries);
  const auto table = cfg.label_map.empty() ? FileListDataset::identity_table(cfg.num_classes)
                                           : read_label_map(cfg.label_map, cfg.num_classes);
  return std::make_unique<FileListDataset>(info, std::move(entries), table,
                                           fmt::format("folder split '{}' at {}", split, cfg.root));
}

}  // namespace

std::array<int, 256> read_label_map(const std::string& path, int num_classes) {
  std::ifstream in(path);
  CSEG_CHECK(in.good(), "label map '{}' (dataset.label_map) cannot be read", path);
  std::array<int, 256> table;
  table.fill(FileListDataset::kInvalid);
  int line_no = 0, pairs = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    line = line.substr(0, line.find('#'));
    std::istringstream ss(line);
    long raw = 0, label = 0;
    std::string extra;
    if (!(ss >> raw)) {
      CSEG_CHECK(line.find_first_not_of(" \t\r") == std::string::npos,
                 "label map '{}' line {}: expected \"raw label\", got '{}'", path, line_no, line);
      continue;
    }
    CSEG_CHECK(ss >> label && !(ss >> extra), "label map '{}' line {}: expected \"raw label\", got '{}'", path, line_no,
               line);
    CSEG_CHECK(raw >= 0 && raw <= 255, "label map '{}' line {}: raw value {} is not in 0..255", path, line_no, raw);
    CSEG_CHECK((label >= 0 && label < num_classes) || label == 255,
               "label map '{}' line {}: label {} is not a class (0..{}) or 255", path, line_no, label, num_classes - 1);
    CSEG_CHECK(table[raw] == FileListDataset::kInvalid, "label map '{}' line {}: raw value {} is mapped twice", path,
               line_no, raw);
    table[raw] = static_cast<int>(label);
    ++pairs;
  }
  CSEG_CHECK(pairs > 0, "label map '{}' maps no value", path);
  return table;
}

std::array<int, 256> cityscapes_label_table() {
  std::array<int, 256> t;
  t.fill(FileListDataset::kInvalid);
  for (int v = 0; v <= 33; ++v) t[v] = 255;
  const int pairs[19][2] = {{7, 0},   {8, 1},   {11, 2},  {12, 3},  {13, 4},  {17, 5},  {19, 6},
                            {20, 7},  {21, 8},  {22, 9},  {23, 10}, {24, 11}, {25, 12}, {26, 13},
                            {27, 14}, {28, 15}, {31, 16}, {32, 17}, {33, 18}};
  for (const auto& p : pairs) t[p[0]] = p[1];
  t[255] = 255;  // "license plate" (-1) is stored as 255 in some exports
  return t;
}

const std::vector<std::string>& cityscapes_city_order() {
  static const std::vector<std::string> cities{
      "aachen",          "bremen",    "darmstadt", "erfurt",  "hanover",    "krefeld", "strasbourg",
      "tubingen",        "weimar",    "bochum",    "cologne", "dusseldorf", "hamburg", "jena",
      "monchengladbach", "stuttgart", "ulm",       "zurich",  "frankfurt",  "lindau",  "munster"};
  return cities;
}

namespace {

/// The dataset registry: one row per on-disk layout.
struct DatasetEntry {
  const char* name;
  std::unique_ptr<Dataset> (*make)(const DatasetOptions&, const std::string&);
  /// The label space its labels are in; "" for a folder dataset (it names its own).
  const char* label_space;
  bool saliency = false;  ///< reads saliency maps (dataset.saliency_dir)
};

std::unique_ptr<Dataset> make_voc_like(const DatasetOptions& cfg, const std::string& split) {
  return make_voc_layout(cfg, split, info_of(cfg.name));
}

const std::vector<DatasetEntry>& registry() {
  static const std::vector<DatasetEntry> table{
      {"voc", make_voc_like, "voc", true},
      {"ade20k", make_ade20k, "ade20k"},
      {"cityscapes", make_cityscapes, "cityscapes"},
      {"kitti", make_kitti, "cityscapes"},
      {"folder", make_folder, "", true},
      {"fmnist_scenes", make_voc_like, "fmnist_scenes", true},
      {"nyuv2", make_nyuv2, "nyu40"},
      {"hypersim", make_hypersim, "nyu40"},
      {"scannet", make_scannet, "nyu40"},
  };
  return table;
}

const DatasetEntry& entry(const std::string& name) {
  for (const auto& e : registry())
    if (name == e.name) return e;
  fail("unknown dataset '{}'; known: {}", name, fmt::join(dataset_names(), ", "));
}

}  // namespace

std::vector<std::string> dataset_names() {
  std::vector<std::string> names;
  for (const auto& e : registry()) names.push_back(e.name);
  return names;
}

bool dataset_reads_saliency(const std::string& name) { return entry(name).saliency; }

std::string label_space_name(const DatasetOptions& cfg) {
  const auto& e = entry(cfg.name);
  return *e.label_space ? e.label_space : cfg.label_space;
}

std::unique_ptr<Dataset> make_dataset(const DatasetOptions& cfg, const std::string& split) {
  return entry(cfg.name).make(cfg, split);
}

}  // namespace cseg::data
