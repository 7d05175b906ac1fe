#pragma once
// Test fixtures: temporary folders and tiny datasets written in their real on-disk formats.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <opencv2/imgproc.hpp>
#include <random>
#include <string>
#include <vector>

#include "cseg/data/image_io.h"

namespace cseg::test {

namespace fs = std::filesystem;

/// A fresh folder under the system temp dir, removed at scope exit.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = fs::temp_directory_path() / ("cseg-test-" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  std::string str() const { return path_.string(); }
  fs::path operator/(const std::string& p) const { return path_ / p; }

 private:
  fs::path path_;
};

struct Rect {
  int label, x, y, w, h;
};

/// A label map of size w x h: background 0, then each rect painted in order.
inline cv::Mat label_map(int w, int h, const std::vector<Rect>& rects) {
  cv::Mat m(h, w, CV_8UC1, cv::Scalar(0));
  for (const auto& r : rects) m(cv::Rect(r.x, r.y, r.w, r.h)).setTo(r.label);
  return m;
}

/// An RGB image whose colour depends on the label, so a model can learn it.
inline cv::Mat image_for(const cv::Mat& labels) {
  cv::Mat rgb(labels.rows, labels.cols, CV_8UC3);
  for (int y = 0; y < labels.rows; ++y)
    for (int x = 0; x < labels.cols; ++x) {
      int l = labels.at<uint8_t>(y, x);
      rgb.at<cv::Vec3b>(y, x) = cv::Vec3b((l * 53) % 256, (l * 97 + 40) % 256, (l * 151 + 80) % 256);
    }
  return rgb;
}

inline void write_lines(const fs::path& file, const std::vector<std::string>& lines) {
  fs::create_directories(file.parent_path());
  std::ofstream out(file);
  for (const auto& l : lines) out << l << "\n";
}

/// Writes one VOC-layout sample: JPEGImages/<id>.jpg and <mask_dir>/<id>.png (palette).
inline void write_voc_sample(const fs::path& root, const std::string& id, const cv::Mat& labels,
                             const std::string& mask_dir = "SegmentationClass") {
  fs::create_directories(root / "JPEGImages");
  fs::create_directories(root / mask_dir);
  data::write_jpeg((root / "JPEGImages" / (id + ".jpg")).string(), image_for(labels), 98);
  data::write_label_png((root / mask_dir / (id + ".png")).string(), labels, data::voc_palette());
}

/// A folder-format dataset (images/, masks/, splits/<split>.txt) of the given label maps.
inline void write_folder_dataset(const fs::path& root, const std::string& split, const std::vector<cv::Mat>& masks,
                                 const std::string& prefix) {
  fs::create_directories(root / "images");
  fs::create_directories(root / "masks");
  std::vector<std::string> ids;
  for (size_t i = 0; i < masks.size(); ++i) {
    std::string id = prefix + std::to_string(i);
    data::write_jpeg((root / "images" / (id + ".jpg")).string(), image_for(masks[i]), 98);
    data::write_label_png((root / "masks" / (id + ".png")).string(), masks[i], data::voc_palette());
    ids.push_back(id);
  }
  write_lines(root / "splits" / (split + ".txt"), ids);
}

/// Expects `fn` to throw cseg::Error whose message contains every string in `parts`.
template <typename Fn>
void expect_error(Fn&& fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "expected a cseg::Error";
  } catch (const std::exception& e) {
    const std::string msg = e.what();
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "message: " << msg << "\nmissing: " << p;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "the error should be one line: " << msg;
  }
}

/// An uncompressed BMP file of an 8-bit BGR image (24 bits, or 32 with a zero fourth byte), rows
/// bottom-up as usual, or top-down (a negative height); cseg has no BMP writer of its own.
inline std::string bmp_bytes(const cv::Mat& bgr, int bits = 24, bool top_down = false) {
  const int w = bgr.cols, h = bgr.rows, stride = (w * bits / 8 + 3) / 4 * 4;
  std::string b(54 + size_t(stride) * h, '\0');
  const auto put = [&](size_t at, uint32_t v, int n) {
    for (int k = 0; k < n; ++k) b[at + k] = char((v >> (8 * k)) & 0xff);
  };
  b[0] = 'B', b[1] = 'M';
  put(2, uint32_t(b.size()), 4);
  put(10, 54, 4);  // pixel data offset
  put(14, 40, 4);  // BITMAPINFOHEADER
  put(18, uint32_t(w), 4);
  put(22, uint32_t(top_down ? -h : h), 4);
  put(26, 1, 2);
  put(28, uint32_t(bits), 2);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c)
        b[54 + size_t(top_down ? y : h - 1 - y) * stride + x * bits / 8 + c] = char(bgr.at<cv::Vec3b>(y, x)[c]);
  return b;
}

}  // namespace cseg::test
