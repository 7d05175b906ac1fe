#pragma once
/// PNG, JPEG and BMP in memory, with libpng and libjpeg(-turbo) directly: cseg needs these three
/// formats only, and OpenCV's imgcodecs module would bring its every other codec along (Debian's
/// links GDAL, GDCM and OpenEXR: about 350 MB of libraries a GPU machine's bundle would carry).
/// OpenCV's conventions are kept so that a decoded image is pixel for pixel what
/// cv::imdecode gave (tests/data/test_image_codecs.cpp checks it against OpenCV where imgcodecs
/// is installed): colour images are BGR, `colour` decoding drops alpha and 16-bit precision, and
/// the JPEG encoder makes the bytes OpenCV's did for the same quality (baseline, 4:2:0, JFIF).
#include <opencv2/core.hpp>
#include <string>
#include <vector>

namespace cseg::data {

/// The most pixels cseg decodes from one image, label, depth or flow file: 64 Mi (8192 x 8192),
/// far above any segmentation dataset's frames. A header may claim up to 2^31 x 2^31 pixels; the
/// claim is checked before anything is allocated, so a crafted file cannot exhaust memory.
constexpr int64_t kMaxImagePixels = int64_t(1) << 26;

enum class Decode {
  colour,    ///< 8-bit BGR (H x W x 3) whatever the file holds (cv::IMREAD_COLOR)
  unchanged  ///< as stored: 8- or 16-bit, 1, 3 (BGR) or 4 (BGRA) channels (cv::IMREAD_UNCHANGED)
};

/// The format of a file's first bytes and the size its header claims, without decoding.
struct ImageHeader {
  const char* format = nullptr;  ///< "PNG", "JPEG", "BMP"; nullptr for anything else
  int64_t width = -1, height = -1;
};
ImageHeader sniff_image(const std::vector<unsigned char>& bytes);

/// Decodes PNG, JPEG or BMP bytes. Throws cseg::Error starting with `name` (what and where the
/// bytes are, e.g. "image file 'a.jpg'") when they are none of these, claim more than
/// kMaxImagePixels, or are corrupt.
/// JPEG: EXIF orientation applied, as OpenCV does. BMP: uncompressed 8-bit (palette), 24- and
/// 32-bit, bottom-up or top-down; other BMP variants are refused by name.
cv::Mat decode_image(const std::vector<unsigned char>& bytes, Decode mode, const std::string& name);

/// PNG of an 8-bit 1-, 3- (BGR) or 4-channel (BGRA) image, or a 16-bit 1-channel one.
std::vector<unsigned char> encode_png(const cv::Mat& image);
/// Baseline JPEG of an 8-bit gray or BGR image, quality 0-100.
std::vector<unsigned char> encode_jpeg(const cv::Mat& image, int quality = 95);

}  // namespace cseg::data
