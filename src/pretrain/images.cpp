#include "cseg/pretrain/images.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <opencv2/imgproc.hpp>
#include <random>

#include "cseg/core/error.h"
#include "cseg/core/runtime.h"
#include "cseg/data/fmnist/scenes.h"
#include "cseg/data/image_io.h"
#include "cseg/data/label_spaces.h"

namespace fs = std::filesystem;

namespace cseg::pretrain {

namespace {

/// The count of a class's n items held out: the `share` of them, at least one, leaving one.
size_t held_out_count(size_t n, double share) {
  return std::clamp<size_t>(size_t(std::llround(double(n) * share)), 1, n - 1);
}

class FmnistPhotos : public ClassificationImages {
 public:
  explicit FmnistPhotos(const config::PretrainDataConfig& d) {
    const std::string dir = d.root.empty() ? data::fmnist::default_fmnist_dir() : d.root;
    photos_ = data::fmnist::read_idx(dir + "/train-images-idx3-ubyte.gz", dir + "/train-labels-idx1-ubyte.gz");
    options_.size = d.image_size;
    options_.min_scale = d.min_scale;
    options_.max_scale = d.max_scale;
    options_.textures = d.textures;
    // Class names without background (label space entries 1..10).
    const auto& names = data::label_space("fmnist_scenes").class_names;
    class_names_.assign(names.begin() + 1, names.end());
    std::vector<std::vector<int>> by_class(class_names_.size());
    for (int i = 0; i < photos_.count; ++i) by_class.at(photos_.labels[i]).push_back(i);
    for (size_t c = 0; c < by_class.size(); ++c) {
      const auto& v = by_class[c];
      CSEG_CHECK(v.size() >= 2, "'{}': class {} has {} photo(s); at least 2 are needed (one held out)", dir,
                 class_names_[c], v.size());
      const size_t keep = v.size() - held_out_count(v.size(), d.held_out);
      for (size_t k = 0; k < v.size(); ++k) {
        (k < keep ? train_ : held_out_).push_back(v[k]);
        (k < keep ? train_labels_ : held_out_labels_).push_back(int(c));
      }
    }
    dir_ = dir;
  }
  void train_image(size_t i, uint64_t seed, uint8_t* rgb) const override { draw(train_.at(i), seed, rgb); }
  void held_out_image(size_t i, uint8_t* rgb) const override {
    draw(held_out_.at(i), core::mix_seed(0x4E1D0ull, uint64_t(held_out_.at(i))), rgb);
  }
  std::string describe() const override {
    return fmt::format(
        "Fashion-MNIST train photos in {} drawn as scene items at {}x{} ({} classes, {} to train, {} "
        "held out)",
        dir_, options_.size, options_.size, class_names_.size(), train_.size(), held_out_.size());
  }

 private:
  void draw(int photo, uint64_t seed, uint8_t* rgb) const {
    const auto img = data::fmnist::render_photo(photos_, photo, options_, seed);
    std::memcpy(rgb, img.data(), img.size());
  }
  data::fmnist::IdxSet photos_;
  data::fmnist::PhotoOptions options_;
  std::vector<int> train_, held_out_;  // photo indices
  std::string dir_;
};

class ClassFolders : public ClassificationImages {
 public:
  explicit ClassFolders(const config::PretrainDataConfig& d) : d_(d) {
    CSEG_CHECK(fs::is_directory(d.root), "pretraining folder '{}' does not exist (expected root/<class>/*.jpg)",
               d.root);
    std::vector<fs::path> classes;
    for (const auto& e : fs::directory_iterator(d.root))
      if (e.is_directory()) classes.push_back(e.path());
    std::sort(classes.begin(), classes.end());
    CSEG_CHECK(classes.size() >= 2,
               "pretraining folder '{}' has {} class folder(s); at least 2 are needed "
               "(root/<class>/*.jpg)",
               d.root, classes.size());
    for (size_t c = 0; c < classes.size(); ++c) {
      std::vector<std::string> files;
      for (const auto& e : fs::directory_iterator(classes[c])) {
        if (!e.is_regular_file()) continue;
        std::string ext = e.path().extension().string();
        std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return std::tolower(ch); });
        if (ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp") files.push_back(e.path().string());
      }
      std::sort(files.begin(), files.end());
      CSEG_CHECK(files.size() >= 2,
                 "class folder '{}' has {} image(s) (.jpg, .jpeg, .png, .bmp); at least 2 are "
                 "needed, one to train and one held out",
                 classes[c].string(), files.size());
      class_names_.push_back(classes[c].filename().string());
      const size_t keep = files.size() - held_out_count(files.size(), d.held_out);
      for (size_t k = 0; k < files.size(); ++k) {
        (k < keep ? train_ : held_out_).push_back(files[k]);
        (k < keep ? train_labels_ : held_out_labels_).push_back(int(c));
      }
    }
  }
  void train_image(size_t i, uint64_t seed, uint8_t* rgb) const override {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    const double scale = d_.scale_min + u(rng) * (d_.scale_max - d_.scale_min);
    crop(train_.at(i), scale, u(rng), u(rng), d_.hflip && u(rng) < 0.5, rgb);
  }
  void held_out_image(size_t i, uint8_t* rgb) const override { crop(held_out_.at(i), 1.0, 0.5, 0.5, false, rgb); }
  std::string describe() const override {
    return fmt::format("class folders under {} at {}x{} ({} classes, {} to train, {} held out)", d_.root, d_.image_size,
                       d_.image_size, class_names_.size(), train_.size(), held_out_.size());
  }

 private:
  /// The image with its shorter side resized to image_size x scale, a square crop at relative
  /// position (fx, fy), mirrored when asked.
  void crop(const std::string& file, double scale, double fx, double fy, bool flip, uint8_t* rgb) const {
    const cv::Mat img = data::read_rgb(file);
    const int s = d_.image_size;
    const double f = double(s) * scale / double(std::min(img.rows, img.cols));
    const int w = std::max(s, int(std::lround(img.cols * f))), h = std::max(s, int(std::lround(img.rows * f)));
    cv::Mat resized;
    cv::resize(img, resized, cv::Size(w, h), 0, 0, f < 1 ? cv::INTER_AREA : cv::INTER_LINEAR);
    const int x = int(std::lround(fx * (w - s))), y = int(std::lround(fy * (h - s)));
    cv::Mat out(s, s, CV_8UC3, rgb);
    if (flip)
      cv::flip(resized(cv::Rect(x, y, s, s)), out, 1);
    else
      resized(cv::Rect(x, y, s, s)).copyTo(out);
  }
  config::PretrainDataConfig d_;
  std::vector<std::string> train_, held_out_;
};

}  // namespace

std::unique_ptr<ClassificationImages> open_classification_images(const config::PretrainDataConfig& data) {
  if (data.source == "fmnist") return std::make_unique<FmnistPhotos>(data);
  CSEG_CHECK(data.source == "folder", "pretraining data source '{}': expected fmnist or folder", data.source);
  return std::make_unique<ClassFolders>(data);
}

}  // namespace cseg::pretrain
