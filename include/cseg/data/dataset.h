#pragma once
/// The dataset interface: a dataset returns raw images and raw masks by index and knows nothing
/// about continual steps (scenarios select and remap; see scenarios/).
#include <array>
#include <memory>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

namespace cseg::data {

/// Label conventions everywhere in cseg: 0 = background, 255 = ignore/void.
constexpr uint8_t kIgnore = 255;

struct Sample {
  std::string id;
  cv::Mat image;     ///< H x W x 3, uint8, RGB
  cv::Mat mask;      ///< H x W, uint8, dataset labels (0..num_classes-1, 255 = ignore)
  cv::Mat saliency;  ///< H x W, uint8 (0 = not salient), only when the loader asks for it
  cv::Mat depth;     ///< H x W, float metres (0 = unknown), only when the loader asks for it
  /// Video, when the loader asks for it: the next frame of the sequence, the optical flow from
  /// this frame to it (H x W x 2 float pixels, adaptation/optical_flow.h's convention) and where
  /// that flow holds (H x W uint8, non-zero). A last frame has no next: flow 0, nothing holds.
  cv::Mat next_image, flow, flow_valid;
};

struct DatasetInfo {
  std::string name;
  int num_classes = 0;                          ///< including background 0
  std::vector<std::string> class_names;         ///< num_classes entries
  std::vector<std::array<uint8_t, 3>> palette;  ///< 256 colours by dataset label (label_spaces.h)
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual const DatasetInfo& info() const = 0;
  virtual size_t size() const = 0;
  virtual const std::string& id(size_t index) const = 0;
  /// Image and mask, checked: both decode, same size, every label value in the dataset's table.
  virtual Sample load(size_t index) const = 0;
  /// Only the mask (for building class-presence indices without decoding images).
  virtual cv::Mat load_mask(size_t index) const = 0;
  /// Only the image (H x W x 3 RGB), never reading the mask.
  virtual cv::Mat load_image(size_t index) const { return load(index).image; }
  /// "voc split 'train' at /data/VOC2012", for messages and cache keys.
  virtual std::string describe() const = 0;
  /// Changes when the mask of `index` changes on disk (size and modification time), so cached
  /// class indices are rebuilt after masks are edited in place.
  virtual std::string mask_stamp(size_t index) const = 0;
  /// The saliency map of `index` (H x W uint8, > 0 = salient) for SSUL's unknown class; throws
  /// naming the dataset when it has none.
  virtual cv::Mat load_saliency(size_t index) const;
  virtual bool has_saliency() const { return false; }
  /// The depth map of `index` (H x W float metres, 0 = unknown) for depth cues; throws naming
  /// the dataset when it has none.
  virtual cv::Mat load_depth(size_t index) const;
  virtual bool has_depth() const { return false; }
  /// Video: the dataset's frames grouped into sequences, each in time order (indices into this
  /// dataset); empty when the dataset has no sequences (still images).
  virtual std::vector<std::vector<size_t>> sequences() const { return {}; }
};

/// For every frame of `dataset` (by index), the index of the next frame of its sequence
/// (Dataset::sequences), -1 for a sequence's last frame and for frames in no sequence.
std::vector<int64_t> next_frame_indices(const Dataset& dataset);

/// A dataset given as a list of (id, image file, label file), with a table mapping each raw
/// label value in the files to a dataset label (or 255). Values the table marks invalid are an
/// error naming the file: they mean the wrong dataset or a corrupt mask.
class FileListDataset : public Dataset {
 public:
  struct Entry {
    std::string id, image_path, mask_path;
    std::string saliency_path;  ///< empty: none
    std::string depth_path;     ///< empty: none; 16-bit PNG in millimetres
  };
  static constexpr int kInvalid = -1;
  /// label_table[v] = dataset label for raw value v, 255 for ignore, kInvalid if v must not occur.
  FileListDataset(DatasetInfo info, std::vector<Entry> entries, std::array<int, 256> label_table,
                  std::string description);

  const DatasetInfo& info() const override { return info_; }
  size_t size() const override { return entries_.size(); }
  const std::string& id(size_t i) const override { return entries_.at(i).id; }
  Sample load(size_t index) const override;
  cv::Mat load_mask(size_t index) const override;
  cv::Mat load_image(size_t index) const override;
  std::string describe() const override { return description_; }
  std::string mask_stamp(size_t index) const override;
  cv::Mat load_saliency(size_t index) const override;
  bool has_saliency() const override { return !entries_.empty() && !entries_[0].saliency_path.empty(); }
  cv::Mat load_depth(size_t index) const override;
  bool has_depth() const override { return !entries_.empty() && !entries_[0].depth_path.empty(); }
  std::vector<std::vector<size_t>> sequences() const override { return sequences_; }
  /// Groups frames into sequences by id (each inner list in time order); unknown ids throw.
  void set_sequences(const std::vector<std::vector<std::string>>& ids);
  const Entry& entry(size_t i) const { return entries_.at(i); }

  /// Identity table for labels 0..num_classes-1 plus 255.
  static std::array<int, 256> identity_table(int num_classes);

 private:
  DatasetInfo info_;
  std::vector<Entry> entries_;
  std::array<int, 256> table_;
  std::string description_;
  std::vector<std::vector<size_t>> sequences_;
};

/// Another dataset's frames with other masks: images, ids, depth and sequences come from
/// `inner`; subclasses say what the masks are.
class DatasetView : public Dataset {
 public:
  DatasetView(std::shared_ptr<const Dataset> inner, std::string why) : inner_(std::move(inner)), why_(std::move(why)) {}
  const DatasetInfo& info() const override { return inner_->info(); }
  size_t size() const override { return inner_->size(); }
  const std::string& id(size_t index) const override { return inner_->id(index); }
  /// The inner frame's image with this view's mask; no mask file of `inner` is opened.
  Sample load(size_t index) const override;
  cv::Mat load_mask(size_t index) const override { return mask(index, inner_->load_image(index).size()); }
  cv::Mat load_image(size_t index) const override { return inner_->load_image(index); }
  std::string describe() const override { return inner_->describe() + " (" + why_ + ")"; }
  std::string mask_stamp(size_t) const override { return why_; }
  cv::Mat load_depth(size_t index) const override { return inner_->load_depth(index); }
  bool has_depth() const override { return inner_->has_depth(); }
  std::vector<std::vector<size_t>> sequences() const override { return inner_->sequences(); }

 protected:
  /// The mask of frame `index`, whose image is `size`.
  virtual cv::Mat mask(size_t index, cv::Size size) const = 0;
  std::shared_ptr<const Dataset> inner_;
  std::string why_;
};

/// As an unlabelled environment sees a dataset: every mask is all 255 and no mask file is ever
/// opened (they need not exist).
class UnlabelledDataset : public DatasetView {
 public:
  explicit UnlabelledDataset(std::shared_ptr<const Dataset> inner) : DatasetView(std::move(inner), "unlabelled") {}

 protected:
  cv::Mat mask(size_t, cv::Size size) const override { return cv::Mat(size, CV_8UC1, cv::Scalar(kIgnore)); }
};

/// With label maps given in memory (e.g. pseudo-labels computed for a step): 255 ignore, one
/// 8-bit map per frame of its image's size.
class RelabelledDataset : public DatasetView {
 public:
  RelabelledDataset(std::shared_ptr<const Dataset> inner, std::vector<cv::Mat> masks, std::string why);
  cv::Mat load_mask(size_t index) const override { return masks_.at(index).clone(); }

 protected:
  cv::Mat mask(size_t index, cv::Size) const override { return load_mask(index); }

 private:
  std::vector<cv::Mat> masks_;
};

/// Several datasets of one label space read as one, in order (e.g. the environments seen so far
/// for joint training): index i of part p is offset_p + i; sequences and depth carry over.
class ConcatDataset : public Dataset {
 public:
  ConcatDataset(std::vector<std::shared_ptr<const Dataset>> parts, std::string description);
  const DatasetInfo& info() const override { return parts_.front()->info(); }
  size_t size() const override { return offsets_.back(); }
  const std::string& id(size_t index) const override;
  Sample load(size_t index) const override;
  cv::Mat load_mask(size_t index) const override;
  cv::Mat load_image(size_t index) const override;
  std::string describe() const override { return description_; }
  std::string mask_stamp(size_t index) const override;
  cv::Mat load_depth(size_t index) const override;
  bool has_depth() const override;
  std::vector<std::vector<size_t>> sequences() const override;

 private:
  /// (part, index within it) of `index`.
  std::pair<const Dataset*, size_t> locate(size_t index) const;
  std::vector<std::shared_ptr<const Dataset>> parts_;
  std::vector<size_t> offsets_;  ///< parts_.size() + 1 entries, offsets_[0] = 0
  std::string description_;
};

}  // namespace cseg::data
