#include "cseg/data/datasets/indoor.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <opencv2/imgproc.hpp>
#include <set>
#include <sstream>

#include "cseg/core/error.h"
#include "cseg/data/image_io.h"
#include "cseg/data/label_spaces.h"
#include "hdf5_file.h"
#include "matlab_v5.h"

namespace fs = std::filesystem;

namespace cseg::data {

namespace {

constexpr int kNyu40Classes = 40;

DatasetInfo nyu40_info(const std::string& name) {
  const auto& space = label_space("nyu40");
  return {name, int(space.class_names.size()), space.class_names, space.palette};
}

/// A NYU-40 id as stored (0 or negative = unlabelled) -> cseg label (255 = ignore); anything
/// else is an error naming where it came from.
uint8_t nyu40_label(int v, const std::string& where) {
  if (v <= 0) return kIgnore;
  CSEG_CHECK(v <= kNyu40Classes, "{} holds the label {}, which is not a NYU-40 class (1..40; 0 or -1 = unlabelled)",
             where, v);
  return static_cast<uint8_t>(v);
}

std::string file_stamp(const std::string& path) {
  std::error_code ec;
  auto size = fs::file_size(path, ec);
  if (ec) return "missing";
  return fmt::format("{}:{}", size, fs::last_write_time(path, ec).time_since_epoch().count());
}

std::vector<std::string> read_words(const fs::path& file) {
  std::ifstream in(file);
  CSEG_CHECK(in.good(), "cannot read '{}'", file.string());
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

/// Frames of a dataset whose samples are not one image file and one 8-bit PNG each: the
/// subclasses decode their own formats.
class FrameDataset : public Dataset {
 public:
  struct Frame {
    std::string id;
    std::string image, labels, depth;  ///< files (NYUv2 .mat: the same file for all three)
    int64_t index = -1;                ///< entry inside the file, where one file holds many frames
  };

  FrameDataset(DatasetInfo info, std::vector<Frame> frames, std::string description)
      : info_(std::move(info)), frames_(std::move(frames)), description_(std::move(description)) {
    CSEG_CHECK(!frames_.empty(), "{} holds no frames", description_);
  }
  const DatasetInfo& info() const override { return info_; }
  size_t size() const override { return frames_.size(); }
  const std::string& id(size_t i) const override { return frames_.at(i).id; }
  std::string describe() const override { return description_; }
  std::string mask_stamp(size_t i) const override {
    const Frame& f = frames_.at(i);
    return file_stamp(f.labels) + (f.index >= 0 ? fmt::format("#{}", f.index) : "");
  }
  Sample load(size_t i) const override {
    const Frame& f = frames_.at(i);
    Sample s;
    s.id = f.id;
    s.image = read_image(f);
    s.mask = read_labels(f);
    CSEG_CHECK(s.image.size() == s.mask.size(), "{}: the labels of frame '{}' are {}x{}, its image {}x{}", description_,
               f.id, s.mask.cols, s.mask.rows, s.image.cols, s.image.rows);
    return s;
  }
  cv::Mat load_mask(size_t i) const override { return read_labels(frames_.at(i)); }
  cv::Mat load_image(size_t i) const override { return read_image(frames_.at(i)); }
  cv::Mat load_depth(size_t i) const override { return read_depth(frames_.at(i)); }
  bool has_depth() const override { return true; }

 protected:
  virtual cv::Mat read_image(const Frame& f) const = 0;   ///< H x W x 3 uint8 RGB
  virtual cv::Mat read_labels(const Frame& f) const = 0;  ///< H x W uint8 NYU-40 ids, 255 ignore
  virtual cv::Mat read_depth(const Frame& f) const = 0;   ///< H x W float metres

 private:
  DatasetInfo info_;
  std::vector<Frame> frames_;
  std::string description_;
};

// ---------------------------------------------------------------------------------------------
// NYUv2

/// An H x W frame size read from a file, checked before anything is allocated for it (the numbers
/// come from the file and may be crafted).
void check_frame_size(uint64_t height, uint64_t width, const std::string& what) {
  CSEG_CHECK(height > 0 && width > 0 && width <= uint64_t(kMaxImagePixels) / height,
             "{}: frames of {} x {} pixels; expected 1 to {} pixels", what, height, width, kMaxImagePixels);
}

class NyuMatDataset : public FrameDataset {
 public:
  NyuMatDataset(std::shared_ptr<hdf5::File> file, std::vector<uint8_t> to_nyu40, std::vector<Frame> frames,
                std::string description)
      : FrameDataset(nyu40_info("nyuv2"), std::move(frames), std::move(description)),
        file_(std::move(file)),
        to_nyu40_(std::move(to_nyu40)) {
    // MATLAB writes arrays transposed: images (N, 3, W, H), labels and depths (N, W, H).
    const auto images = file_->dims("images"), labels = file_->dims("labels"), depths = file_->dims("depths");
    CSEG_CHECK(images.size() == 4 && images[1] == 3 && labels.size() == 3 && depths.size() == 3 &&
                   labels[0] == images[0] && depths[0] == images[0] && labels[1] == images[2] &&
                   labels[2] == images[3] && depths[1] == images[2] && depths[2] == images[3],
               "NYUv2 file '{}': expected images (N, 3, W, H), labels and depths (N, W, H) of one N, W, H",
               file_->path());
    check_frame_size(images[3], images[2], fmt::format("NYUv2 file '{}'", file_->path()));
    frames_in_file_ = images[0];
    width_ = static_cast<int>(images[2]);
    height_ = static_cast<int>(images[3]);
  }

 protected:
  cv::Mat read_image(const Frame& f) const override {
    const auto v = file_->read_slab<uint8_t>("images", check(f));
    cv::Mat rgb(height_, width_, CV_8UC3);
    const size_t plane = size_t(width_) * height_;
    for (int y = 0; y < height_; ++y)
      for (int x = 0; x < width_; ++x)
        for (int c = 0; c < 3; ++c) rgb.at<cv::Vec3b>(y, x)[c] = v[c * plane + size_t(x) * height_ + y];
    return rgb;
  }
  cv::Mat read_labels(const Frame& f) const override {
    const auto v = file_->read_slab<uint16_t>("labels", check(f));
    cv::Mat out(height_, width_, CV_8UC1);
    for (int y = 0; y < height_; ++y)
      for (int x = 0; x < width_; ++x) {
        const uint16_t raw = v[size_t(x) * height_ + y];
        CSEG_CHECK(raw < to_nyu40_.size(),
                   "NYUv2 file '{}': frame {} holds class {}, beyond the {} classes of the mapping", file_->path(),
                   f.index + 1, raw, to_nyu40_.size() - 1);
        out.at<uint8_t>(y, x) = to_nyu40_[raw];
      }
    return out;
  }
  cv::Mat read_depth(const Frame& f) const override {
    const auto v = file_->read_slab<float>("depths", check(f));
    cv::Mat out(height_, width_, CV_32FC1);
    for (int y = 0; y < height_; ++y)
      for (int x = 0; x < width_; ++x) out.at<float>(y, x) = v[size_t(x) * height_ + y];
    return out;
  }

 private:
  uint64_t check(const Frame& f) const {
    CSEG_CHECK(f.index >= 0 && uint64_t(f.index) < frames_in_file_,
               "NYUv2 file '{}' has {} frames; the split asks for frame {}", file_->path(), frames_in_file_,
               f.index + 1);
    return static_cast<uint64_t>(f.index);
  }
  std::shared_ptr<hdf5::File> file_;
  std::vector<uint8_t> to_nyu40_;  ///< raw class (0..894) -> NYU-40 label (255 unlabelled)
  uint64_t frames_in_file_ = 0;
  int width_ = 0, height_ = 0;
};

std::unique_ptr<Dataset> make_nyuv2_mat(const fs::path& mat_path, const std::string& split) {
  const fs::path dir = mat_path.parent_path();
  CSEG_CHECK(split == "train" || split == "test", "NYUv2 split '{}': the labelled set has splits train and test",
             split);
  // classMapping40.mat: mapClass[i - 1] = NYU-40 id of raw class i (1..894); raw 0 = unlabelled.
  const std::string mapping_path = (dir / "classMapping40.mat").string();
  const auto map_class = matlab::read_numbers(mapping_path, "mapClass");
  std::vector<uint8_t> to_nyu40{kIgnore};
  for (size_t i = 0; i < map_class.size(); ++i)
    to_nyu40.push_back(nyu40_label(static_cast<int>(map_class[i]),
                                   fmt::format("NYUv2 mapping '{}' (mapClass entry {})", mapping_path, i + 1)));
  const std::string splits_path = (dir / "splits.mat").string();
  const auto indices = matlab::read_numbers(splits_path, split == "train" ? "trainNdxs" : "testNdxs");
  auto file = std::make_shared<hdf5::File>(mat_path.string());
  std::vector<FrameDataset::Frame> frames;
  for (double one_based : indices) {
    CSEG_CHECK(one_based >= 1 && one_based == std::floor(one_based),
               "NYUv2 '{}': split index {} is not a 1-based frame number", splits_path, one_based);
    const auto n = static_cast<int64_t>(one_based) - 1;
    frames.push_back({fmt::format("{:04d}", n + 1), mat_path.string(), mat_path.string(), mat_path.string(), n});
  }
  return std::make_unique<NyuMatDataset>(file, std::move(to_nyu40), std::move(frames),
                                         fmt::format("nyuv2 split '{}' at {}", split, mat_path.string()));
}

std::unique_ptr<Dataset> make_nyuv2_folders(const fs::path& root, const std::string& split) {
  const fs::path rgb = root / split / "rgb", labels = root / split / "labels_40", depth = root / split / "depth";
  CSEG_CHECK(fs::is_directory(rgb) && fs::is_directory(labels),
             "NYUv2 at '{}': neither nyu_depth_v2_labeled.mat nor the extracted layout {}/{{rgb,labels_40}}/ exists",
             root.string(), (root / split).string());
  std::vector<FileListDataset::Entry> entries;
  const bool with_depth = fs::is_directory(depth);
  for (const auto& f : fs::directory_iterator(rgb)) {
    if (f.path().extension() != ".png" && f.path().extension() != ".jpg") continue;
    const std::string stem = f.path().stem().string();
    FileListDataset::Entry e{stem, f.path().string(), (labels / (stem + ".png")).string(), "", ""};
    if (with_depth) e.depth_path = (depth / (stem + ".png")).string();
    entries.push_back(std::move(e));
  }
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  std::array<int, 256> table;
  table.fill(FileListDataset::kInvalid);
  table[0] = kIgnore;  // unlabelled
  for (int v = 1; v <= kNyu40Classes; ++v) table[v] = v;
  table[255] = kIgnore;
  return std::make_unique<FileListDataset>(nyu40_info("nyuv2"), std::move(entries), table,
                                           fmt::format("nyuv2 split '{}' at {}", split, root.string()));
}

// ---------------------------------------------------------------------------------------------
// ML-Hypersim

class HypersimDataset : public FrameDataset {
 public:
  using FrameDataset::FrameDataset;

 protected:
  cv::Mat read_image(const Frame& f) const override {
    hdf5::File file(f.image);
    const auto d = file.dims("dataset");
    CSEG_CHECK(d.size() == 3 && d[2] == 3, "Hypersim colour file '{}': expected an H x W x 3 dataset", f.image);
    check_frame_size(d[0], d[1], fmt::format("Hypersim colour file '{}'", f.image));
    const auto v = file.read<float>("dataset");
    const int h = static_cast<int>(d[0]), w = static_cast<int>(d[1]);
    // The Hypersim authors' tone mapping: scale so the 90th percentile of brightness lands at
    // 0.8 after gamma 1/2.2, then apply the gamma.
    std::vector<float> brightness(size_t(h) * w);
    for (size_t p = 0; p < brightness.size(); ++p)
      brightness[p] = 0.3f * v[3 * p] + 0.59f * v[3 * p + 1] + 0.11f * v[3 * p + 2];
    const size_t nth = static_cast<size_t>(0.9 * double(brightness.size() - 1));
    std::nth_element(brightness.begin(), brightness.begin() + nth, brightness.end());
    const float p90 = brightness[nth];
    const float scale = p90 < 1e-4f ? 0.f : std::pow(0.8f, 2.2f) / p90;
    cv::Mat rgb(h, w, CV_8UC3);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        for (int c = 0; c < 3; ++c) {
          const float linear = std::max(0.f, scale * v[(size_t(y) * w + x) * 3 + c]);
          rgb.at<cv::Vec3b>(y, x)[c] =
              static_cast<uint8_t>(std::clamp(std::pow(linear, 1.f / 2.2f), 0.f, 1.f) * 255.f + 0.5f);
        }
    return rgb;
  }
  cv::Mat read_labels(const Frame& f) const override {
    hdf5::File file(f.labels);
    const auto d = file.dims("dataset");
    CSEG_CHECK(d.size() == 2, "Hypersim semantic file '{}': expected an H x W dataset", f.labels);
    check_frame_size(d[0], d[1], fmt::format("Hypersim semantic file '{}'", f.labels));
    const auto v = file.read<int32_t>("dataset");
    cv::Mat out(static_cast<int>(d[0]), static_cast<int>(d[1]), CV_8UC1);
    const std::string where = fmt::format("Hypersim semantic file '{}'", f.labels);
    for (size_t p = 0; p < v.size(); ++p) out.data[p] = nyu40_label(v[p], where);
    return out;
  }
  cv::Mat read_depth(const Frame& f) const override {
    hdf5::File file(f.depth);
    const auto d = file.dims("dataset");
    CSEG_CHECK(d.size() == 2, "Hypersim depth file '{}': expected an H x W dataset", f.depth);
    check_frame_size(d[0], d[1], fmt::format("Hypersim depth file '{}'", f.depth));
    auto v = file.read<float>("dataset");
    for (float& x : v)
      if (!std::isfinite(x)) x = 0;  // rays that hit nothing
    return cv::Mat(static_cast<int>(d[0]), static_cast<int>(d[1]), CV_32FC1, v.data()).clone();
  }
};

/// A text table whose first line names its columns (Hypersim's split CSV, ScanNet's label TSV).
/// Cells lose trailing spaces and carriage returns.
class TextTable {
 public:
  /// `what` names the table in messages ("hypersim split file"); the caller checks it exists.
  TextTable(const fs::path& file, char separator, std::string what)
      : in_(file), separator_(separator), file_(file.string()), what_(std::move(what)) {
    std::string line;
    std::getline(in_, line);
    header_ = split(line);
  }
  size_t width() const { return header_.size(); }
  /// The index of column `name`; throws naming the table when it has none.
  size_t column(const std::string& name) const {
    auto it = std::find(header_.begin(), header_.end(), name);
    CSEG_CHECK(it != header_.end(), "{} '{}' has no column '{}'", what_, file_, name);
    return static_cast<size_t>(it - header_.begin());
  }
  /// The next row's cells; false at the end. line() is then its line number (the header is 1).
  bool next(std::vector<std::string>& cells) {
    std::string line;
    if (!std::getline(in_, line)) return false;
    ++line_;
    cells = split(line);
    return true;
  }
  int line() const { return line_; }

 private:
  std::vector<std::string> split(const std::string& line) const {
    std::vector<std::string> cells;
    std::stringstream ss(line);
    for (std::string cell; std::getline(ss, cell, separator_);) {
      while (!cell.empty() && (cell.back() == '\r' || cell.back() == ' ')) cell.pop_back();
      cells.push_back(cell);
    }
    return cells;
  }
  std::ifstream in_;
  char separator_;
  std::string file_, what_;
  std::vector<std::string> header_;
  int line_ = 1;
};

/// Folders of `root` to read, in name order: those named in `wanted` (each must exist), else all.
std::vector<std::string> scene_folders(const fs::path& root, const std::vector<std::string>& wanted,
                                       const std::string& dataset) {
  std::vector<std::string> scenes;
  if (!wanted.empty()) {
    for (const auto& s : wanted)
      CSEG_CHECK(fs::is_directory(root / s), "{}: scene '{}' (dataset.scenes) is not a folder of '{}'", dataset, s,
                 root.string());
    scenes = wanted;
  } else {
    for (const auto& e : fs::directory_iterator(root))
      if (e.is_directory()) scenes.push_back(e.path().filename().string());
  }
  std::sort(scenes.begin(), scenes.end());
  return scenes;
}

std::unique_ptr<Dataset> make_hypersim_impl(const DatasetOptions& cfg, const std::string& split) {
  const fs::path root(cfg.root);
  CSEG_CHECK(fs::is_directory(root), "hypersim root '{}' does not exist or is not a folder", cfg.root);
  // The official split: (scene, camera, frame) -> partition, public frames only.
  const fs::path csv = root / "metadata_images_split_scene_v1.csv";
  std::set<std::string> in_split;
  const bool have_csv = fs::exists(csv);
  if (have_csv) {
    TextTable table(csv, ',', "hypersim split file");
    const size_t scene = table.column("scene_name"), camera = table.column("camera_name"),
                 frame = table.column("frame_id"), public_release = table.column("included_in_public_release"),
                 partition = table.column("split_partition_name");
    for (std::vector<std::string> cells; table.next(cells);) {
      if (cells.size() < table.width()) continue;
      if (cells[public_release] != "True" || cells[partition] != split) continue;
      in_split.insert(fmt::format("{}/{}/{:04d}", cells[scene], cells[camera], std::stoi(cells[frame])));
    }
    CSEG_CHECK(!in_split.empty(), "hypersim split '{}': no public frame of '{}' is in it (splits: train, val, test)",
               split, csv.string());
  } else {
    CSEG_CHECK(split == "all", "hypersim split '{}': '{}' does not exist; without it every frame is split 'all'", split,
               csv.string());
  }
  std::vector<FrameDataset::Frame> frames;
  const std::string final_suffix = "_final_hdf5", color_suffix = ".color.hdf5";
  for (const auto& scene : scene_folders(root, cfg.scenes, "hypersim")) {
    const fs::path images = root / scene / "images";
    if (!fs::is_directory(images)) continue;
    for (const auto& cam_dir : fs::directory_iterator(images)) {
      const std::string name = cam_dir.path().filename().string();  // scene_cam_00_final_hdf5
      if (!cam_dir.is_directory() || name.size() <= final_suffix.size() ||
          name.compare(name.size() - final_suffix.size(), final_suffix.size(), final_suffix) != 0 ||
          name.rfind("scene_", 0) != 0)
        continue;
      const std::string camera = name.substr(6, name.size() - 6 - final_suffix.size());  // cam_00
      const fs::path geometry = images / ("scene_" + camera + "_geometry_hdf5");
      for (const auto& f : fs::directory_iterator(cam_dir.path())) {
        const std::string file = f.path().filename().string();  // frame.0000.color.hdf5
        if (file.rfind("frame.", 0) != 0 || file.size() <= color_suffix.size() + 6 ||
            file.compare(file.size() - color_suffix.size(), color_suffix.size(), color_suffix) != 0)
          continue;
        const std::string number = file.substr(6, file.size() - 6 - color_suffix.size());
        int frame_id = 0;
        try {
          frame_id = std::stoi(number);
        } catch (const std::exception&) {
          continue;
        }
        if (have_csv && !in_split.count(fmt::format("{}/{}/{:04d}", scene, camera, frame_id))) continue;
        frames.push_back({fmt::format("{}_{}_{}", scene, camera, number), f.path().string(),
                          (geometry / ("frame." + number + ".semantic.hdf5")).string(),
                          (geometry / ("frame." + number + ".depth_meters.hdf5")).string(), -1});
      }
    }
  }
  std::sort(frames.begin(), frames.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  std::string scenes = cfg.scenes.empty() ? "" : fmt::format(", scenes {}", fmt::join(cfg.scenes, " "));
  return std::make_unique<HypersimDataset>(nyu40_info("hypersim"), std::move(frames),
                                           fmt::format("hypersim split '{}' at {}{}", split, cfg.root, scenes));
}

// ---------------------------------------------------------------------------------------------
// ScanNet

class ScanNetDataset : public FrameDataset {
 public:
  ScanNetDataset(std::vector<int> to_nyu40, std::vector<Frame> frames, std::string description)
      : FrameDataset(nyu40_info("scannet"), std::move(frames), std::move(description)),
        to_nyu40_(std::move(to_nyu40)) {}

 protected:
  cv::Mat read_image(const Frame& f) const override {
    cv::Mat rgb = read_rgb(f.image);
    const cv::Size target = label_size(f);
    if (rgb.size() != target) cv::resize(rgb, rgb, target, 0, 0, cv::INTER_AREA);  // colour is 1296x968, labels 640x480
    return rgb;
  }
  cv::Mat read_labels(const Frame& f) const override {
    const cv::Mat raw = read_raw_labels(f);
    cv::Mat out(raw.size(), CV_8UC1);
    const std::string where = fmt::format("ScanNet label file '{}'", f.labels);
    for (int y = 0; y < raw.rows; ++y)
      for (int x = 0; x < raw.cols; ++x) {
        const int id = raw.depth() == CV_16U ? raw.at<uint16_t>(y, x) : raw.at<uint8_t>(y, x);
        CSEG_CHECK(id < int(to_nyu40_.size()) && to_nyu40_[id] != FileListDataset::kInvalid,
                   "{} holds the ScanNet id {}, which scannetv2-labels.combined.tsv does not list", where, id);
        out.at<uint8_t>(y, x) = static_cast<uint8_t>(to_nyu40_[id]);
      }
    return out;
  }
  cv::Mat read_depth(const Frame& f) const override { return read_depth_png(f.depth); }

 private:
  cv::Mat read_raw_labels(const Frame& f) const {
    cv::Mat raw = read_image_file(f.labels, Decode::unchanged, "ScanNet label file");
    CSEG_CHECK(!raw.empty() && raw.channels() == 1 && (raw.depth() == CV_16U || raw.depth() == CV_8U),
               "ScanNet label file '{}' is not a 1-channel 8- or 16-bit PNG", f.labels);
    return raw;
  }
  cv::Size label_size(const Frame& f) const { return read_raw_labels(f).size(); }
  std::vector<int> to_nyu40_;  ///< ScanNet id -> NYU-40 label (255 unlabelled), kInvalid unlisted
};

std::vector<int> scannet_to_nyu40(const fs::path& tsv) {
  CSEG_CHECK(fs::exists(tsv), "scannet: the label table '{}' does not exist (it ships with ScanNet)", tsv.string());
  TextTable rows(tsv, '\t', "scannet label table");
  const size_t id_col = rows.column("id"), nyu_col = rows.column("nyu40id");
  std::vector<int> table(1, kIgnore);  // id 0: unannotated
  for (std::vector<std::string> cells; rows.next(cells);) {
    const int row = rows.line();
    if (cells.empty()) continue;
    CSEG_CHECK(cells.size() > std::max(id_col, nyu_col), "scannet label table '{}' line {}: too few columns",
               tsv.string(), row);
    int id = 0, nyu = 0;
    try {
      id = std::stoi(cells[id_col]);
      nyu = cells[nyu_col].empty() ? 0 : std::stoi(cells[nyu_col]);
    } catch (const std::exception&) {
      fail("scannet label table '{}' line {}: id '{}' and nyu40id '{}' must be numbers", tsv.string(), row,
           cells[id_col], cells[nyu_col]);
    }
    CSEG_CHECK(id > 0 && id < 65536, "scannet label table '{}' line {}: id {} out of range", tsv.string(), row, id);
    if (int(table.size()) <= id) table.resize(id + 1, FileListDataset::kInvalid);
    table[id] = nyu40_label(nyu, fmt::format("scannet label table '{}' line {}", tsv.string(), row));
  }
  return table;
}

std::unique_ptr<Dataset> make_scannet_impl(const DatasetOptions& cfg, const std::string& split) {
  const fs::path root(cfg.root);
  CSEG_CHECK(fs::is_directory(root), "scannet root '{}' does not exist or is not a folder", cfg.root);
  const fs::path scans = fs::is_directory(root / "scans") ? root / "scans" : root;
  auto table = scannet_to_nyu40(root / "scannetv2-labels.combined.tsv");
  std::vector<std::string> scenes = scene_folders(scans, cfg.scenes, "scannet");
  const fs::path list = root / ("scannetv2_" + split + ".txt");
  if (fs::exists(list)) {
    const auto listed = read_words(list);
    const std::set<std::string> keep(listed.begin(), listed.end());
    scenes.erase(std::remove_if(scenes.begin(), scenes.end(), [&](const auto& s) { return !keep.count(s); }),
                 scenes.end());
  }
  std::vector<FrameDataset::Frame> frames;
  for (const auto& scene : scenes) {
    const fs::path dir = scans / scene;
    if (!fs::is_directory(dir / "label-filt")) continue;
    std::vector<std::pair<long, std::string>> numbered;
    for (const auto& f : fs::directory_iterator(dir / "label-filt")) {
      if (f.path().extension() != ".png") continue;
      try {
        numbered.emplace_back(std::stol(f.path().stem().string()), f.path().stem().string());
      } catch (const std::exception&) {
      }
    }
    std::sort(numbered.begin(), numbered.end());
    for (const auto& [n, stem] : numbered)
      frames.push_back({fmt::format("{}_{:06d}", scene, n), (dir / "color" / (stem + ".jpg")).string(),
                        (dir / "label-filt" / (stem + ".png")).string(), (dir / "depth" / (stem + ".png")).string(),
                        -1});
  }
  std::string filter = cfg.scenes.empty() ? "" : fmt::format(", scenes {}", fmt::join(cfg.scenes, " "));
  return std::make_unique<ScanNetDataset>(std::move(table), std::move(frames),
                                          fmt::format("scannet split '{}' at {}{}", split, cfg.root, filter));
}

}  // namespace

std::unique_ptr<Dataset> make_nyuv2(const DatasetOptions& cfg, const std::string& split) {
  const fs::path root(cfg.root);
  if (fs::is_regular_file(root) && root.extension() == ".mat") return make_nyuv2_mat(root, split);
  CSEG_CHECK(fs::is_directory(root), "nyuv2 root '{}' does not exist (a folder, or nyu_depth_v2_labeled.mat)",
             cfg.root);
  if (fs::exists(root / "nyu_depth_v2_labeled.mat")) return make_nyuv2_mat(root / "nyu_depth_v2_labeled.mat", split);
  return make_nyuv2_folders(root, split);
}

std::unique_ptr<Dataset> make_hypersim(const DatasetOptions& cfg, const std::string& split) {
  return make_hypersim_impl(cfg, split);
}

std::unique_ptr<Dataset> make_scannet(const DatasetOptions& cfg, const std::string& split) {
  return make_scannet_impl(cfg, split);
}

}  // namespace cseg::data
