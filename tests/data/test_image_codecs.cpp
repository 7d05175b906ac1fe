// cseg's own PNG, JPEG and BMP codecs (data/image_codecs.h): round trips, the EXIF orientations,
// BMP layouts and bad input; where OpenCV's imgcodecs is installed, the decoded pixels and the
// JPEG bytes against OpenCV's, so that replacing it changed no dataset and no number.
#include <gtest/gtest.h>

#include <algorithm>
#include <opencv2/imgproc.hpp>
#ifdef CSEG_HAVE_OPENCV_IMGCODECS
#include <opencv2/imgcodecs.hpp>
#endif

#include "cseg/core/files.h"
#include "cseg/data/image_codecs.h"
#include "fixtures.h"

using namespace cseg;
using data::Decode;

namespace {

cv::Mat noise(int rows, int cols, int type, uint64_t seed) {
  cv::Mat m(rows, cols, type);
  cv::RNG rng(seed);
  rng.fill(m, cv::RNG::UNIFORM, 0, type % 8 == CV_16U ? 65536 : 256);
  return m;
}

/// A smooth colour picture (JPEG's lossy round trip stays close on it, unlike on noise).
cv::Mat picture(int rows, int cols) {
  cv::Mat m(rows, cols, CV_8UC3);
  for (int y = 0; y < rows; ++y)
    for (int x = 0; x < cols; ++x)
      m.at<cv::Vec3b>(y, x) = cv::Vec3b(uint8_t(4 * x), uint8_t(5 * y), uint8_t(2 * (x + y)));
  return m;
}

bool same(const cv::Mat& a, const cv::Mat& b) {
  return a.type() == b.type() && a.size() == b.size() && cv::norm(a, b, cv::NORM_INF) == 0;
}

/// `jpeg` with an APP1 EXIF segment (little-endian TIFF, one IFD entry: Orientation) after SOI.
std::vector<unsigned char> with_orientation(const std::vector<unsigned char>& jpeg, int orientation) {
  const unsigned char tiff[] = {'I',
                                'I',
                                42,
                                0,
                                8,
                                0,
                                0,
                                0,  // header, IFD0 at 8
                                1,
                                0,  // one entry
                                0x12,
                                0x01,
                                3,
                                0,
                                1,
                                0,
                                0,
                                0,  // Orientation, SHORT, 1 value
                                uint8_t(orientation),
                                0,
                                0,
                                0,
                                0,
                                0,
                                0,
                                0};  // value; no next IFD
  std::vector<unsigned char> app1 = {0xff, 0xe1, 0, 0, 'E', 'x', 'i', 'f', 0, 0};
  app1.insert(app1.end(), std::begin(tiff), std::end(tiff));
  app1[2] = uint8_t((app1.size() - 2) >> 8), app1[3] = uint8_t((app1.size() - 2) & 0xff);
  std::vector<unsigned char> out(jpeg.begin(), jpeg.begin() + 2);
  out.insert(out.end(), app1.begin(), app1.end());
  out.insert(out.end(), jpeg.begin() + 2, jpeg.end());
  return out;
}

std::vector<unsigned char> bytes_of(const std::string& s) { return {s.begin(), s.end()}; }

}  // namespace

TEST(ImageCodecs, PngRoundTripsEveryLayout) {
  for (int type : {CV_8UC1, CV_8UC3, CV_8UC4, CV_16UC1}) {
    const cv::Mat m = noise(13, 21, type, uint64_t(type));
    const auto png = data::encode_png(m);
    EXPECT_TRUE(same(data::decode_image(png, Decode::unchanged, "m"), m)) << "type " << type;
    // Colour: 8-bit BGR, alpha dropped, gray repeated, the high byte of 16-bit samples.
    cv::Mat expected = m;
    if (expected.channels() == 1) cv::cvtColor(expected, expected, cv::COLOR_GRAY2BGR);
    if (expected.channels() == 4) cv::cvtColor(expected, expected, cv::COLOR_BGRA2BGR);
    if (type == CV_16UC1) {  // the high byte of each sample (truncated, not rounded)
      cv::Mat high(m.size(), CV_8UC1);
      for (int y = 0; y < m.rows; ++y)
        for (int x = 0; x < m.cols; ++x) high.at<uint8_t>(y, x) = uint8_t(m.at<uint16_t>(y, x) >> 8);
      cv::cvtColor(high, expected, cv::COLOR_GRAY2BGR);
    }
    EXPECT_TRUE(same(data::decode_image(png, Decode::colour, "m"), expected)) << "type " << type;
  }
  // A palette PNG (the labels' writer) reads as its colours.
  test::TempDir d;
  const cv::Mat labels = test::label_map(6, 4, {{1, 0, 0, 2, 2}, {15, 2, 2, 4, 2}});
  data::write_label_png((d / "l.png").string(), labels, data::voc_palette());
  const std::string file = cseg::core::read_text((d / "l.png").string());
  const cv::Mat colours = data::decode_image(bytes_of(file), Decode::unchanged, "l.png");
  ASSERT_EQ(colours.type(), CV_8UC3);
  EXPECT_EQ(colours.at<cv::Vec3b>(0, 0), cv::Vec3b(0, 0, 128));      // class 1: RGB (128, 0, 0)
  EXPECT_EQ(colours.at<cv::Vec3b>(3, 3), cv::Vec3b(128, 128, 192));  // class 15: RGB (192, 128, 128)
}

TEST(ImageCodecs, JpegDecodesWhatItEncodes) {
  const cv::Mat bgr = picture(24, 40);
  const cv::Mat back = data::decode_image(data::encode_jpeg(bgr, 95), Decode::colour, "p");
  ASSERT_EQ(back.type(), CV_8UC3);
  ASSERT_EQ(back.size(), bgr.size());
  EXPECT_LT(cv::norm(back, bgr, cv::NORM_L1) / double(bgr.total() * 3), 2.0);  // mean error, 0-255 scale
  // Quality is honoured: a lower one makes a smaller file.
  EXPECT_LT(data::encode_jpeg(bgr, 30).size(), data::encode_jpeg(bgr, 95).size());
  // A gray JPEG: one channel as stored, three equal ones as colour.
  cv::Mat gray;
  cv::cvtColor(bgr, gray, cv::COLOR_BGR2GRAY);
  const auto jpeg = data::encode_jpeg(gray);
  const cv::Mat g1 = data::decode_image(jpeg, Decode::unchanged, "g"),
                g3 = data::decode_image(jpeg, Decode::colour, "g");
  ASSERT_EQ(g1.type(), CV_8UC1);
  cv::Mat g1_as_bgr;
  cv::cvtColor(g1, g1_as_bgr, cv::COLOR_GRAY2BGR);
  EXPECT_TRUE(same(g3, g1_as_bgr));
  test::expect_error([&] { data::encode_jpeg(gray, 101); }, {"quality 101"});
  test::expect_error([&] { data::encode_jpeg(cv::Mat(2, 2, CV_16UC1)); }, {"8-bit gray or BGR"});
}

// EXIF orientation n says how the stored picture must turn to stand upright: 2 mirrored, 3 upside
// down, 4 mirrored top-bottom, 5 transposed, 6 turned 90 degrees clockwise to display, 7 the
// other diagonal, 8 turned 90 degrees counter-clockwise. Colour decoding applies it (as OpenCV's
// IMREAD_COLOR); unchanged decoding gives the stored pixels.
TEST(ImageCodecs, ExifOrientationTurnsTheImageUpright) {
  const auto stored_jpeg = data::encode_jpeg(picture(16, 32));
  const cv::Mat stored = data::decode_image(stored_jpeg, Decode::colour, "plain");
  const auto upright = [&](int orientation) {
    cv::Mat e = stored.clone();
    switch (orientation) {
      case 2: cv::flip(stored, e, 1); break;
      case 3: cv::rotate(stored, e, cv::ROTATE_180); break;
      case 4: cv::flip(stored, e, 0); break;
      case 5: cv::transpose(stored, e); break;
      case 6: cv::rotate(stored, e, cv::ROTATE_90_CLOCKWISE); break;
      case 7: cv::rotate(stored, e, cv::ROTATE_90_CLOCKWISE), cv::flip(e, e, 0); break;
      case 8: cv::rotate(stored, e, cv::ROTATE_90_COUNTERCLOCKWISE); break;
      default: break;
    }
    return e;
  };
  for (int o = 1; o <= 8; ++o) {
    const auto jpeg = with_orientation(stored_jpeg, o);
    EXPECT_TRUE(same(data::decode_image(jpeg, Decode::colour, "o"), upright(o))) << "orientation " << o;
    EXPECT_TRUE(same(data::decode_image(jpeg, Decode::unchanged, "o"), stored)) << "orientation " << o;
  }
  EXPECT_TRUE(
      same(data::decode_image(with_orientation(stored_jpeg, 9), Decode::colour, "o"), stored));  // invalid: as stored
}

TEST(ImageCodecs, BmpLayouts) {
  const cv::Mat bgr = noise(3, 5, CV_8UC3, 7);  // 5 x 3 bytes per row: padded to 16
  for (int bits : {24, 32})
    for (bool top_down : {false, true})
      EXPECT_TRUE(same(data::decode_image(bytes_of(test::bmp_bytes(bgr, bits, top_down)), Decode::colour, "b"), bgr))
          << bits << " bits, top-down " << top_down;
  // 8 bits with a palette of two colours (B, G, R, 0 each), indices 0 1 1 / 1 0 0 from the bottom row up.
  std::string b = test::bmp_bytes(cv::Mat(2, 3, CV_8UC3), 24);
  b.resize(54);
  const auto put = [&](size_t at, uint32_t v) {
    for (int k = 0; k < 4; ++k) b[at + k] = char((v >> (8 * k)) & 0xff);
  };
  put(10, 54 + 8);       // pixels after the palette
  b[28] = 8, b[29] = 0;  // bits per pixel
  put(46, 2);            // colours used
  b += std::string("\x10\x20\x30\0\x40\x50\x60\0", 8);
  b += std::string("\0\1\1\0\1\0\0\0", 8);  // rows of 3 bytes padded to 4
  const cv::Mat eight = data::decode_image(bytes_of(b), Decode::colour, "p.bmp");
  ASSERT_EQ(eight.size(), cv::Size(3, 2));
  EXPECT_EQ(eight.at<cv::Vec3b>(1, 0), cv::Vec3b(0x10, 0x20, 0x30));  // bottom row first in the file
  EXPECT_EQ(eight.at<cv::Vec3b>(1, 1), cv::Vec3b(0x40, 0x50, 0x60));
  EXPECT_EQ(eight.at<cv::Vec3b>(0, 0), cv::Vec3b(0x40, 0x50, 0x60));
  b[b.size() - 8] = 5;  // an index beyond the two colours
  test::expect_error([&] { data::decode_image(bytes_of(b), Decode::colour, "p.bmp"); }, {"p.bmp", "colour index 5"});
}

TEST(ImageCodecs, BadInputGivesOneLineErrors) {
  const auto png = data::encode_png(noise(32, 32, CV_8UC3, 3));
  const std::vector<unsigned char> cut(png.begin(), png.begin() + long(png.size() / 2));
  test::expect_error([&] { data::decode_image(cut, Decode::colour, "cut.png"); },
                     {"cut.png", "cannot be decoded", "corrupt PNG"});
  auto jpeg = data::encode_jpeg(picture(16, 16));
  const unsigned char sof_marker[] = {0xff, 0xc0}, dht_marker[] = {0xff, 0xc4};
  const auto sof = std::search(jpeg.begin(), jpeg.end(), std::begin(sof_marker), std::end(sof_marker));
  ASSERT_NE(sof, jpeg.end());
  const auto at = sof - jpeg.begin();
  auto no_header = jpeg;
  std::fill(no_header.begin() + 4, no_header.begin() + at + 4, 0x00);  // the segments up to the frame header destroyed
  test::expect_error([&] { data::decode_image(no_header, Decode::colour, "bad.jpg"); },
                     {"bad.jpg", "cannot be decoded", "no image size"});
  auto bad_tables = jpeg;
  const auto dht = std::search(bad_tables.begin(), bad_tables.end(), std::begin(dht_marker), std::end(dht_marker));
  ASSERT_NE(dht, bad_tables.end());
  dht[2] = 0, dht[3] = 1;  // a Huffman table segment of length 1: libjpeg's own error
  test::expect_error([&] { data::decode_image(bad_tables, Decode::colour, "bad.jpg"); }, {"bad.jpg", "corrupt JPEG"});
  // A header claiming more pixels than cseg reads.
  auto huge = jpeg;
  huge[at + 5] = huge[at + 6] = huge[at + 7] = huge[at + 8] = 0xff;  // 65535 x 65535
  test::expect_error([&] { data::decode_image(huge, Decode::colour, "huge.jpg"); },
                     {"huge.jpg", "claims 65535 x 65535"});
  std::string bmp = test::bmp_bytes(noise(2, 2, CV_8UC3, 1));
  bmp[30] = 1;  // BI_RLE8
  test::expect_error([&] { data::decode_image(bytes_of(bmp), Decode::colour, "rle.bmp"); }, {"rle.bmp", "compressed"});
  bmp[30] = 0, bmp[28] = 16;
  test::expect_error([&] { data::decode_image(bytes_of(bmp), Decode::colour, "16.bmp"); }, {"16.bmp", "16-bit BMP"});
  test::expect_error([&] { data::decode_image(bytes_of("GIF89a...."), Decode::colour, "a.gif"); },
                     {"a.gif", "not a PNG, JPEG or BMP"});
  test::expect_error([&] { data::encode_png(cv::Mat(2, 2, CV_32FC1)); }, {"encode_png", "8-bit"});
  test::TempDir d;
  test::expect_error([&] { data::write_image((d / "a.tif").string(), cv::Mat(2, 2, CV_8UC1)); }, {"a.tif", ".png"});
}

// Replacing OpenCV's imgcodecs must change no pixel a dataset reads and no byte of the JPEGs the
// data generators write (FMNIST-Scenes), so that every earlier number stands.
TEST(ImageCodecsParity, DecodedPixelsAndJpegBytesAreOpenCvs) {
#ifndef CSEG_HAVE_OPENCV_IMGCODECS
  GTEST_SKIP() << "OpenCV's imgcodecs is not installed: nothing to compare with";
#else
  const auto encoded = [](const std::string& ext, const cv::Mat& m, std::vector<int> params = {}) {
    std::vector<unsigned char> b;
    EXPECT_TRUE(cv::imencode(ext, m, b, params));
    return b;
  };
  std::vector<std::pair<std::string, std::vector<unsigned char> > > files = {
      {"png 8UC1", encoded(".png", noise(17, 9, CV_8UC1, 1))},
      {"png 8UC3", encoded(".png", noise(17, 9, CV_8UC3, 2))},
      {"png 8UC4", encoded(".png", noise(17, 9, CV_8UC4, 3))},
      {"png 16UC1", encoded(".png", noise(17, 9, CV_16UC1, 4))},
      {"png 16UC3", encoded(".png", noise(17, 9, CV_16UC3, 5))},
      {"jpeg colour", encoded(".jpg", picture(33, 47), {cv::IMWRITE_JPEG_QUALITY, 90})},
      {"jpeg noise", encoded(".jpg", noise(33, 47, CV_8UC3, 6))},
      {"jpeg gray", encoded(".jpg", noise(20, 30, CV_8UC1, 7))},
      {"jpeg progressive", encoded(".jpg", picture(33, 47), {cv::IMWRITE_JPEG_PROGRESSIVE, 1})},
      {"jpeg orientation 6", with_orientation(encoded(".jpg", picture(12, 20)), 6)},
      {"bmp 24", encoded(".bmp", noise(5, 7, CV_8UC3, 8))},
      {"bmp 32 top-down", bytes_of(test::bmp_bytes(noise(5, 7, CV_8UC3, 9), 32, true))},
      {"cseg png 16UC1", data::encode_png(noise(9, 9, CV_16UC1, 10))},
  };
  test::TempDir d;
  data::write_label_png((d / "l.png").string(), test::label_map(5, 5, {{3, 0, 0, 2, 2}}), data::voc_palette());
  files.push_back({"palette png", bytes_of(core::read_text((d / "l.png").string()))});
  for (const auto& [name, b] : files) {
    EXPECT_TRUE(same(data::decode_image(b, Decode::colour, name), cv::imdecode(b, cv::IMREAD_COLOR))) << name;
    if (name.rfind("bmp", 0) != 0)  // OpenCV gives a 32-bit BMP a fourth channel as stored
      EXPECT_TRUE(same(data::decode_image(b, Decode::unchanged, name), cv::imdecode(b, cv::IMREAD_UNCHANGED))) << name;
  }
  // The JPEG encoder writes OpenCV's bytes (the FMNIST-Scenes photos are written at quality 95).
  for (int quality : {95, 75, 30}) {
    const cv::Mat bgr = noise(37, 23, CV_8UC3, uint64_t(quality)), gray = noise(19, 31, CV_8UC1, 99);
    EXPECT_EQ(data::encode_jpeg(bgr, quality), encoded(".jpg", bgr, {cv::IMWRITE_JPEG_QUALITY, quality})) << quality;
    EXPECT_EQ(data::encode_jpeg(gray, quality), encoded(".jpg", gray, {cv::IMWRITE_JPEG_QUALITY, quality})) << quality;
  }
  // PNGs need not be byte-equal, only to decode alike.
  const cv::Mat bgra = noise(8, 8, CV_8UC4, 11);
  EXPECT_TRUE(same(cv::imdecode(data::encode_png(bgra), cv::IMREAD_UNCHANGED), bgra));
#endif
}
