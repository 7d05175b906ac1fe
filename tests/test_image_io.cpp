#include <gtest/gtest.h>

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
  // OpenCV would have given colours: the reason libpng reads labels.
  cv::Mat colour = cv::imread(path, cv::IMREAD_UNCHANGED);
  EXPECT_EQ(colour.channels(), 3);
}

TEST(ImageIo, GrayscaleLabelsAreAccepted) {
  TempDir d;
  cv::Mat labels = test::label_map(8, 8, {{7, 1, 1, 3, 3}});
  cv::imwrite((d / "g.png").string(), labels);
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
  cv::imwrite(rgb, cv::Mat(4, 4, CV_8UC3, cv::Scalar(1, 2, 3)));
  expect_error([&] { data::read_label_png(rgb); }, {"rgb.png", "palette or 8-bit grayscale"});
  const std::string trunc = (d / "trunc.png").string();
  {
    std::vector<uchar> bytes;
    cv::imencode(".png", cv::Mat(64, 64, CV_8UC1, cv::Scalar(3)), bytes);
    std::ofstream(trunc, std::ios::binary).write(reinterpret_cast<char*>(bytes.data()), bytes.size() / 2);
  }
  expect_error([&] { data::read_label_png(trunc); }, {"trunc.png", "corrupt"});
  const std::string jpg = (d / "bad.jpg").string();
  std::ofstream(jpg) << "not a jpeg at all";
  expect_error([&] { data::read_rgb(jpg); }, {"bad.jpg", "cannot be decoded"});
  expect_error([&] { data::read_rgb((d / "none.jpg").string()); }, {"none.jpg", "does not exist"});
  std::ofstream((d / "text.png").string()) << "hello";
  expect_error([&] { data::read_label_png((d / "text.png").string()); }, {"text.png", "not a PNG"});
}
