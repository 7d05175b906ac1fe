#pragma once
/// Labelled images for classification pretraining, split into a training part and a held-out
/// part (for top-1 accuracy). Two sources (config::PretrainDataConfig::source):
///  - fmnist: the Fashion-MNIST *train* photos, each drawn alone as FMNIST-Scenes draws its items
///    (data/fmnist/scenes.h render_photo); the last `held_out` share of each class is held out.
///    The t10k photos, which the val and test scenes use, are never read.
///  - folder: a class-per-folder tree, root/<class>/*.{jpg,jpeg,png,bmp} (ImageNet's train/
///    layout), classes in name order; the last `held_out` share of each class's files (in name
///    order) is held out.
/// Images come as RGB uint8, image_size x image_size x 3. Thread-safe: the pretraining loop
/// loads a batch's images in parallel.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cseg/config/pretrain.h"

namespace cseg::pretrain {

class ClassificationImages {
 public:
  virtual ~ClassificationImages() = default;
  const std::vector<std::string>& class_names() const { return class_names_; }
  size_t train_size() const { return train_labels_.size(); }
  size_t held_out_size() const { return held_out_labels_.size(); }
  int train_label(size_t i) const { return train_labels_.at(i); }
  int held_out_label(size_t i) const { return held_out_labels_.at(i); }
  /// Training image i into `rgb` (image_size² x 3 bytes), augmented as drawn from `seed`.
  virtual void train_image(size_t i, uint64_t seed, uint8_t* rgb) const = 0;
  /// Held-out image i, the same at every call.
  virtual void held_out_image(size_t i, uint8_t* rgb) const = 0;
  /// One line for logs and results: source, classes, images.
  virtual std::string describe() const = 0;

 protected:
  std::vector<std::string> class_names_;
  std::vector<int> train_labels_, held_out_labels_;
};

/// Opens the source of `data` (reading the folder's file list or the Fashion-MNIST photos).
/// Throws naming the folder or file: a missing root, no class folders, an empty class folder, a
/// class too small to hold one image out.
std::unique_ptr<ClassificationImages> open_classification_images(const config::PretrainDataConfig& data);

}  // namespace cseg::pretrain
