#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "cseg/data/image_io.h"
#include "fixtures.h"

using namespace cseg;
using cseg::test::expect_error;
using cseg::test::TempDir;

TEST(ImageIo, PaletteLabelsReadAsRawIndices) {
  TempDir d;
  cv::Mat labels = test::label_map(20, 10, {{15, 2, 2, 5, 5}, {255, 10, 0, 3, 10}, {3, 0, 9, 20, 1}});
  const std::string path = (d / "m.png").string();
  data::write_label_png(path, labels, data::voc_palette());
  cv::Mat back = data::read_label_png(path);
  ASSERT_EQ(back.size(), labels.size());
  EXPECT_EQ(cv::countNonZero(back != labels), 0);
  // An image reader gives colours (as OpenCV's does): the reason labels have a reader of their own.
  cv::Mat colour = data::read_image_file(path, data::Decode::unchanged, "image file");
  EXPECT_EQ(colour.channels(), 3);
}

TEST(ImageIo, GrayscaleLabelsAreAccepted) {
  TempDir d;
  cv::Mat labels = test::label_map(8, 8, {{7, 1, 1, 3, 3}});
  data::write_image((d / "g.png").string(), labels);
  EXPECT_EQ(cv::countNonZero(data::read_label_png((d / "g.png").string()) != labels), 0);
}

TEST(ImageIo, VocPaletteMatchesTheReference) {
  auto p = data::voc_palette();
  EXPECT_EQ(p[1], (std::array<uint8_t, 3>{128, 0, 0}));
  EXPECT_EQ(p[15], (std::array<uint8_t, 3>{192, 128, 128}));
  EXPECT_EQ(p[16], (std::array<uint8_t, 3>{0, 64, 0}));
  EXPECT_EQ(p[20], (std::array<uint8_t, 3>{0, 64, 128}));
  EXPECT_EQ(p[255], (std::array<uint8_t, 3>{224, 224, 192}));
}

TEST(ImageIo, BadFilesGiveErrorsNamingThem) {
  TempDir d;
  const std::string rgb = (d / "rgb.png").string();
  data::write_image(rgb, cv::Mat(4, 4, CV_8UC3, cv::Scalar(1, 2, 3)));
  expect_error([&] { data::read_label_png(rgb); }, {"rgb.png", "palette or 8-bit grayscale"});
  const std::string trunc = (d / "trunc.png").string();
  {
    const auto bytes = data::encode_png(cv::Mat(64, 64, CV_8UC1, cv::Scalar(3)));
    std::ofstream(trunc, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size() / 2);
  }
  expect_error([&] { data::read_label_png(trunc); }, {"trunc.png", "corrupt"});
  const std::string jpg = (d / "bad.jpg").string();
  std::ofstream(jpg) << "not a jpeg at all";
  expect_error([&] { data::read_rgb(jpg); }, {"bad.jpg", "not a PNG, JPEG or BMP"});
  expect_error([&] { data::read_rgb((d / "none.jpg").string()); }, {"none.jpg", "does not exist"});
  std::ofstream((d / "text.png").string()) << "hello";
  expect_error([&] { data::read_label_png((d / "text.png").string()); }, {"text.png", "not a PNG"});
}

namespace {

std::string encode(const std::string& ext, const cv::Mat& m) {
  const auto bytes = ext == ".png" ? data::encode_png(m) : data::encode_jpeg(m);
  return std::string(bytes.begin(), bytes.end());
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}

void put_big_endian(std::string& s, size_t at, uint32_t v, int n) {
  for (int k = 0; k < n; ++k) s[at + k] = char((v >> (8 * (n - 1 - k))) & 0xff);
}

/// PNG's chunk checksum (CRC-32, reflected polynomial 0xEDB88320), so that a patched IHDR still
/// passes libpng's own check and reaches cseg's.
uint32_t crc32(const std::string& bytes) {
  uint32_t c = 0xffffffffu;
  for (unsigned char b : bytes) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
  }
  return c ^ 0xffffffffu;
}

/// A valid 8 x 8 grayscale PNG whose IHDR claims `width` x `height`.
std::string png_claiming(uint32_t width, uint32_t height) {
  std::string png = encode(".png", cv::Mat(8, 8, CV_8UC1, cv::Scalar(3)));
  put_big_endian(png, 16, width, 4);
  put_big_endian(png, 20, height, 4);
  put_big_endian(png, 29, crc32(png.substr(12, 17)), 4);  // over "IHDR" and its 13 data bytes
  return png;
}

}  // namespace

// A header may claim up to 2^31 x 2^31 pixels in a file of a few bytes; each reader refuses a
// claim over kMaxImagePixels by name before allocating for it (before the fix: a 100000 x 100000
// PNG label made libpng's reader allocate 10 GB, a .flo claim 34 GB).
TEST(ImageIo, CraftedSizesAreRefusedBeforeAnyAllocation) {
  TempDir d;
  const std::string png = (d / "huge.png").string(), jpg = (d / "huge.jpg").string(), flo = (d / "huge.flo").string();
  write_file(png, png_claiming(100000, 100000));
  expect_error([&] { data::read_label_png(png); }, {"huge.png", "claims 100000 x 100000 pixels"});
  expect_error([&] { data::read_rgb(png); }, {"huge.png", "claims 100000 x 100000 pixels"});
  expect_error([&] { data::read_depth_png(png); }, {"huge.png", "claims 100000 x 100000 pixels"});
  // The patched file is otherwise valid: at its true size it decodes.
  write_file(png, png_claiming(8, 8));
  EXPECT_EQ(data::read_label_png(png).at<uint8_t>(7, 7), 3);

  // JPEG: the frame header (SOF0) carries height then width.
  std::string jpeg = encode(".jpg", cv::Mat(8, 8, CV_8UC3, cv::Scalar(1, 2, 3)));
  const size_t sof = jpeg.find("\xff\xc0");
  ASSERT_NE(sof, std::string::npos);
  put_big_endian(jpeg, sof + 5, 60000, 2);
  put_big_endian(jpeg, sof + 7, 60000, 2);
  write_file(jpg, jpeg);
  expect_error([&] { data::read_rgb(jpg); }, {"huge.jpg", "claims 60000 x 60000 pixels"});

  // .flo: a size over the limit, and a size within it whose data is missing.
  const float magic = 202021.25f;
  const auto flo_header = [&](int32_t w, int32_t h) {
    std::string b(12, '\0');
    std::memcpy(b.data(), &magic, 4);
    std::memcpy(b.data() + 4, &w, 4);
    std::memcpy(b.data() + 8, &h, 4);
    return b;
  };
  write_file(flo, flo_header(65535, 65535));
  expect_error([&] { data::read_flo(flo); }, {"huge.flo", "bad size 65535 x 65535"});
  write_file(flo, flo_header(4000, 4000) + std::string(64, '\0'));
  expect_error([&] { data::read_flo(flo); }, {"huge.flo", "truncated"});
}

TEST(ImageIo, OnlyPngJpegAndBmpAreDecoded) {
  TempDir d;
  const cv::Mat bgr(6, 5, CV_8UC3, cv::Scalar(10, 20, 30));
  write_file((d / "a.bmp").string(), test::bmp_bytes(bgr));
  const cv::Mat rgb = data::read_rgb((d / "a.bmp").string());
  ASSERT_EQ(rgb.size(), cv::Size(5, 6));
  EXPECT_EQ(rgb.at<cv::Vec3b>(0, 0), cv::Vec3b(30, 20, 10));
  // TIFF (and anything else) is refused by name: no dataset ships it.
  write_file((d / "a.tif").string(), std::string("II*\0\x08\0\0\0", 8) + std::string(64, '\0'));
  expect_error([&] { data::read_rgb((d / "a.tif").string()); }, {"a.tif", "not a PNG, JPEG or BMP"});
}

// libpng's errors jump back over the reader's frames; a file that breaks off inside its image
// data (after the header was read and the label map allocated) must give the one-line error.
TEST(ImageIo, LabelPngCutInsideItsPixelsIsAnError) {
  TempDir d;
  cv::Mat noise(64, 64, CV_8UC1);
  cv::randu(noise, 0, 255);
  const std::string png = encode(".png", noise), path = (d / "cut.png").string();
  for (size_t keep : {size_t(60), png.size() / 2, png.size() - 20}) {
    write_file(path, png.substr(0, keep));
    expect_error([&] { data::read_label_png(path); }, {"cut.png", "corrupt"});
  }
}
