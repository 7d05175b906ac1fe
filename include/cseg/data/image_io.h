#pragma once
/// Reading and writing images and label maps. Label PNGs are read as raw indices with libpng:
/// OpenCV turns a palette PNG (VOC's masks) into colours, or into luminance with
/// IMREAD_GRAYSCALE (index 1 reads as 38), and cannot write one.
#include <array>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "cseg/data/image_codecs.h"

namespace cseg::data {

/// kMaxImagePixels (the most pixels cseg decodes from one file) is in image_codecs.h.

/// Decodes a PNG, JPEG or BMP file (the formats datasets ship; data/image_codecs.h), once its
/// header's size passed kMaxImagePixels. Throws naming the file and `what` it is ("image file",
/// "depth file") when it is missing, another format, too large or corrupt.
cv::Mat read_image_file(const std::string& path, Decode mode, const std::string& what);

/// Decodes a colour image as 8-bit RGB (H x W x 3). Throws naming the file if it is missing or
/// cannot be decoded.
cv::Mat read_rgb(const std::string& path);

/// Reads a label PNG (palette or 8-bit grayscale) as raw values (H x W, CV_8UC1).
/// Throws naming the file for anything else (RGB, 16-bit, corrupt).
cv::Mat read_label_png(const std::string& path);

using Palette = std::vector<std::array<uint8_t, 3>>;  ///< index -> RGB, 256 entries

/// The Pascal VOC colour map (index bits spread over R, G, B from the top bit down).
Palette voc_palette();

/// Writes a palette PNG (indices kept, shown in colour by viewers). Atomic (temp file + rename).
void write_label_png(const std::string& path, const cv::Mat& labels, const Palette& palette);

/// Writes an RGB image as JPEG (quality 0-100). Atomic.
void write_jpeg(const std::string& path, const cv::Mat& rgb, int quality = 95);

/// Writes a BGR (or gray, or 16-bit gray) image as PNG or JPEG, by the extension (.png, .jpg,
/// .jpeg), as cv::imwrite would. Atomic.
void write_image(const std::string& path, const cv::Mat& image, int jpeg_quality = 95);

/// Depth maps as 16-bit PNGs in millimetres (the NYUv2 / ScanNet export convention), 0 = no
/// depth. Read: H x W CV_32F metres; throws naming the file unless it is a 1-channel 16-bit PNG.
cv::Mat read_depth_png(const std::string& path, double units_per_metre = 1000.0);
/// Writes H x W CV_32F metres (clamped to the 16-bit range). Atomic.
void write_depth_png(const std::string& path, const cv::Mat& metres, double units_per_metre = 1000.0);

/// Optical flow in the Middlebury .flo format (float 202021.25, int32 width, height, then
/// interleaved dx, dy rows, little-endian): H x W CV_32FC2. Read throws naming the file when the
/// magic, the size or the length is wrong.
cv::Mat read_flo(const std::string& path);
void write_flo(const std::string& path, const cv::Mat& flow);  ///< Atomic.

}  // namespace cseg::data
