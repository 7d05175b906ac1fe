#include "cseg/data/dataset.h"

#include <algorithm>
#include <filesystem>
#include <map>

#include "cseg/core/error.h"
#include "cseg/data/image_io.h"

namespace cseg::data {

FileListDataset::FileListDataset(DatasetInfo info, std::vector<Entry> entries, std::array<int, 256> label_table,
                                 std::string description)
    : info_(std::move(info)), entries_(std::move(entries)), table_(label_table), description_(std::move(description)) {
  CSEG_CHECK(!entries_.empty(), "{} lists no images", description_);
  CSEG_CHECK(static_cast<int>(info_.class_names.size()) == info_.num_classes, "{}: {} class names for {} classes",
             description_, info_.class_names.size(), info_.num_classes);
}

std::array<int, 256> FileListDataset::identity_table(int num_classes) {
  std::array<int, 256> t;
  t.fill(kInvalid);
  for (int v = 0; v < num_classes && v < 255; ++v) t[v] = v;
  t[255] = 255;
  return t;
}

std::string FileListDataset::mask_stamp(size_t index) const {
  std::error_code ec;
  const auto& path = entries_.at(index).mask_path;
  auto size = std::filesystem::file_size(path, ec);
  if (ec) return "missing";
  auto time = std::filesystem::last_write_time(path, ec).time_since_epoch().count();
  return fmt::format("{}:{}", size, time);
}

cv::Mat FileListDataset::load_mask(size_t index) const {
  const Entry& e = entries_.at(index);
  cv::Mat raw = read_label_png(e.mask_path);
  // Map through the table with a LUT; detect invalid values on the raw histogram.
  bool seen[256] = {false};
  for (int y = 0; y < raw.rows; ++y) {
    const uint8_t* row = raw.ptr<uint8_t>(y);
    for (int x = 0; x < raw.cols; ++x) seen[row[x]] = true;
  }
  cv::Mat lut(1, 256, CV_8UC1);
  for (int v = 0; v < 256; ++v) {
    if (seen[v] && table_[v] == kInvalid)
      fail(
          "label file '{}' holds the value {}, which is not a label of {} ({} classes, 255 = "
          "ignore)",
          e.mask_path, v, info_.name, info_.num_classes);
    lut.at<uint8_t>(v) = static_cast<uint8_t>(table_[v] == kInvalid ? 255 : table_[v]);
  }
  cv::Mat mapped;
  cv::LUT(raw, lut, mapped);
  return mapped;
}

cv::Mat Dataset::load_saliency(size_t) const {
  fail(
      "{} has no saliency maps (SSUL needs them: dataset.saliency_dir, or a SaliencyMap/ folder "
      "beside JPEGImages/)",
      describe());
}

cv::Mat FileListDataset::load_saliency(size_t index) const {
  const Entry& e = entries_.at(index);
  if (e.saliency_path.empty()) return Dataset::load_saliency(index);
  cv::Mat s = read_label_png(e.saliency_path);
  return s;
}

void FileListDataset::set_sequences(const std::vector<std::vector<std::string>>& ids) {
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < entries_.size(); ++i) index[entries_[i].id] = i;
  sequences_.clear();
  for (const auto& seq : ids) {
    std::vector<size_t> frames;
    for (const auto& id : seq) {
      auto it = index.find(id);
      CSEG_CHECK(it != index.end(), "{}: the sequence list names frame '{}', which the split does not hold",
                 description_, id);
      frames.push_back(it->second);
    }
    if (!frames.empty()) sequences_.push_back(std::move(frames));
  }
}

cv::Mat Dataset::load_depth(size_t) const {
  fail(
      "{} has no depth maps (depth cues need a dataset with depth: a Depth/ folder in the VOC layout, "
      "NYUv2, ML-Hypersim or ScanNet)",
      describe());
}

cv::Mat FileListDataset::load_depth(size_t index) const {
  const Entry& e = entries_.at(index);
  if (e.depth_path.empty()) return Dataset::load_depth(index);
  return read_depth_png(e.depth_path);
}

Sample FileListDataset::load(size_t index) const {
  const Entry& e = entries_.at(index);
  Sample s;
  s.id = e.id;
  s.image = load_image(index);
  s.mask = load_mask(index);
  CSEG_CHECK(s.image.size() == s.mask.size(), "label file '{}' is {}x{} but its image '{}' is {}x{} (width x height)",
             e.mask_path, s.mask.cols, s.mask.rows, e.image_path, s.image.cols, s.image.rows);
  return s;
}

cv::Mat FileListDataset::load_image(size_t index) const { return read_rgb(entries_.at(index).image_path); }

Sample DatasetView::load(size_t index) const {
  Sample s;
  s.id = inner_->id(index);
  s.image = inner_->load_image(index);
  s.mask = mask(index, s.image.size());
  CSEG_CHECK(s.mask.size() == s.image.size() && s.mask.type() == CV_8UC1,
             "{}: the label map of '{}' is not an 8-bit map of its image's size", describe(), s.id);
  return s;
}

RelabelledDataset::RelabelledDataset(std::shared_ptr<const Dataset> inner, std::vector<cv::Mat> masks, std::string why)
    : DatasetView(std::move(inner), std::move(why)), masks_(std::move(masks)) {
  CSEG_CHECK(masks_.size() == inner_->size(), "{}: {} label maps for {} frames", describe(), masks_.size(),
             inner_->size());
}

ConcatDataset::ConcatDataset(std::vector<std::shared_ptr<const Dataset>> parts, std::string description)
    : parts_(std::move(parts)), description_(std::move(description)) {
  CSEG_CHECK(!parts_.empty(), "{}: no dataset to concatenate", description_);
  offsets_.push_back(0);
  for (const auto& p : parts_) {
    CSEG_CHECK(p->info().num_classes == parts_.front()->info().num_classes, "{}: {} has {} classes, {} has {}",
               description_, p->describe(), p->info().num_classes, parts_.front()->describe(),
               parts_.front()->info().num_classes);
    offsets_.push_back(offsets_.back() + p->size());
  }
}

std::pair<const Dataset*, size_t> ConcatDataset::locate(size_t index) const {
  CSEG_CHECK(index < size(), "{}: index {} is out of range ({} frames)", description_, index, size());
  const size_t part = size_t(std::upper_bound(offsets_.begin(), offsets_.end(), index) - offsets_.begin()) - 1;
  return {parts_[part].get(), index - offsets_[part]};
}

const std::string& ConcatDataset::id(size_t index) const {
  auto [part, i] = locate(index);
  return part->id(i);
}
Sample ConcatDataset::load(size_t index) const {
  auto [part, i] = locate(index);
  return part->load(i);
}
cv::Mat ConcatDataset::load_mask(size_t index) const {
  auto [part, i] = locate(index);
  return part->load_mask(i);
}
cv::Mat ConcatDataset::load_image(size_t index) const {
  auto [part, i] = locate(index);
  return part->load_image(i);
}
std::string ConcatDataset::mask_stamp(size_t index) const {
  auto [part, i] = locate(index);
  return part->describe() + ":" + part->mask_stamp(i);
}
cv::Mat ConcatDataset::load_depth(size_t index) const {
  auto [part, i] = locate(index);
  return part->load_depth(i);
}
bool ConcatDataset::has_depth() const {
  return std::all_of(parts_.begin(), parts_.end(), [](const auto& p) { return p->has_depth(); });
}
std::vector<std::vector<size_t>> ConcatDataset::sequences() const {
  std::vector<std::vector<size_t>> all;
  for (size_t p = 0; p < parts_.size(); ++p)
    for (auto seq : parts_[p]->sequences()) {
      for (auto& i : seq) i += offsets_[p];
      all.push_back(std::move(seq));
    }
  return all;
}

std::vector<int64_t> next_frame_indices(const Dataset& dataset) {
  std::vector<int64_t> next(dataset.size(), -1);
  for (const auto& seq : dataset.sequences())
    for (size_t i = 0; i + 1 < seq.size(); ++i) next.at(seq[i]) = int64_t(seq[i + 1]);
  return next;
}

}  // namespace cseg::data
