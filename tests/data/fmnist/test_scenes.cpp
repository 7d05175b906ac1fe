#include <gtest/gtest.h>

#include "cseg/data/datasets.h"
#include "cseg/data/fmnist/scenes.h"
#include "fixtures.h"

using namespace cseg;
using namespace cseg::data::fmnist;

namespace {
// 20 synthetic 28x28 "photos", two per class, so the generator can be tested without the package.
IdxSet synthetic_photos() {
  IdxSet s;
  s.count = 20;
  s.rows = s.cols = 28;
  s.pixels.assign(20 * 28 * 28, 0);
  for (int i = 0; i < 20; ++i) {
    s.labels.push_back(static_cast<uint8_t>(i % 10));
    for (int y = 6; y < 22; ++y)
      for (int x = 6; x < 22; ++x) s.pixels[i * 784 + y * 28 + x] = static_cast<uint8_t>(120 + 6 * i);
  }
  return s;
}
}  // namespace

TEST(FmnistScenes, ComposeIsDeterministicWithVoidBorders) {
  auto photos = synthetic_photos();
  SceneOptions o;
  o.width = o.height = 64;
  o.min_items = 2;
  o.max_items = 3;
  auto a = compose_scene(photos, 0, 20, o, 42), b = compose_scene(photos, 0, 20, o, 42),
       c = compose_scene(photos, 0, 20, o, 43);
  EXPECT_EQ(a.rgb, b.rgb);
  EXPECT_EQ(a.label, b.label);
  EXPECT_NE(a.rgb, c.rgb);
  int fg = 0, border = 0;
  for (uint8_t l : a.label) {
    EXPECT_TRUE(l <= 10 || l == 255) << int(l);
    fg += l >= 1 && l <= 10;
    border += l == 255;
  }
  EXPECT_GT(fg, 0);
  EXPECT_GT(border, 0);
}

TEST(FmnistScenes, EnvironmentsChangeTheLookNotTheLabels) {
  auto photos = synthetic_photos();
  SceneOptions studio, night;
  studio.width = studio.height = night.width = night.height = 48;
  night.environment = environment_preset("night");
  auto a = compose_scene(photos, 0, 20, studio, 5), b = compose_scene(photos, 0, 20, night, 5);
  EXPECT_EQ(a.label, b.label);
  double mean_a = 0, mean_b = 0;
  for (size_t i = 0; i < a.rgb.size(); ++i) {
    mean_a += a.rgb[i];
    mean_b += b.rgb[i];
  }
  EXPECT_LT(mean_b, 0.8 * mean_a);  // night is darker
  test::expect_error([] { environment_preset("mars"); }, {"unknown environment 'mars'", "studio"});
}

TEST(FmnistScenes, GeneratesVocLayoutFromTheDebianPackage) {
  const std::string dir = default_fmnist_dir();
  if (!std::filesystem::exists(dir + "/t10k-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "dataset-fashion-mnist is not installed (scripts/setup.sh installs it)";
  test::TempDir d;
  GenerateOptions g;
  g.out_dir = d.str();
  g.train = 6;
  g.val = 3;
  g.test = 3;
  g.scene.width = g.scene.height = 48;
  EXPECT_TRUE(generate_scenes(g));
  EXPECT_FALSE(generate_scenes(g));  // same options: nothing to redo
  data::DatasetOptions c;
  c.name = "fmnist_scenes";
  c.root = d.str();
  auto ds = data::make_dataset(c, "test");
  ASSERT_EQ(ds->size(), 3u);
  auto s = ds->load(0);
  EXPECT_EQ(s.image.size(), cv::Size(48, 48));
  EXPECT_EQ(ds->info().class_names[9], "bag");
  // Same seed, same bytes.
  test::TempDir d2;
  g.out_dir = d2.str();
  generate_scenes(g);
  EXPECT_EQ(cv::countNonZero(data::make_dataset(c, "test")->load(2).mask !=
                             [&] {
                               data::DatasetOptions c2 = c;
                               c2.root = d2.str();
                               return data::make_dataset(c2, "test")->load(2).mask;
                             }()),
            0);
}

TEST(FmnistScenes, IdxErrorsNameTheFile) {
  test::TempDir d;
  std::ofstream((d / "x.gz").string()) << "not gzip, not idx";
  test::expect_error([&] { read_idx((d / "x.gz").string(), (d / "x.gz").string()); }, {"x.gz"});
  test::expect_error([&] { read_idx((d / "none.gz").string(), (d / "none.gz").string()); },
                     {"none.gz", "dataset-fashion-mnist"});
}
