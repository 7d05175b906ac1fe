#include <gtest/gtest.h>

#include <set>

#include "cseg/config/config.h"
#include "cseg/config/experiment.h"
#include "cseg/core/files.h"
#include "cseg/data/class_index.h"
#include "cseg/data/datasets.h"
#include "fixtures.h"

using namespace cseg;
using cseg::test::expect_error;
using cseg::test::TempDir;

namespace {
data::DatasetOptions cfg_of(const std::string& name, const std::string& root) {
  data::DatasetOptions c;
  c.name = name;
  c.root = root;
  return c;
}
}  // namespace

TEST(Datasets, VocIdsListWithPaletteMasks) {
  TempDir d;
  test::write_voc_sample(d.path(), "2007_000001", test::label_map(16, 12, {{15, 0, 0, 4, 4}, {255, 4, 4, 2, 2}}));
  test::write_voc_sample(d.path(), "2007_000002", test::label_map(10, 10, {{20, 1, 1, 3, 3}}));
  test::write_lines(d / "ImageSets/Segmentation/train.txt", {"2007_000001", "2007_000002"});
  auto ds = data::make_dataset(cfg_of("voc", d.str()), "train");
  ASSERT_EQ(ds->size(), 2u);
  EXPECT_EQ(ds->info().num_classes, 21);
  auto s = ds->load(0);
  EXPECT_EQ(s.id, "2007_000001");
  EXPECT_EQ(s.image.size(), cv::Size(16, 12));
  EXPECT_EQ(s.mask.at<uint8_t>(0, 0), 15);
  EXPECT_EQ(s.mask.at<uint8_t>(4, 4), 255);
  auto index = data::build_class_index(*ds, "", 2);
  EXPECT_TRUE(index[1][20] && index[1][0] && !index[1][15]);
}

TEST(Datasets, VocTrainAugPairLayout) {
  // The MiB/PLOP layout: a list of "/JPEGImages/x.jpg /SegmentationClassAug/x.png" pairs.
  TempDir d;
  test::write_voc_sample(d.path(), "a", test::label_map(8, 8, {{3, 0, 0, 2, 2}}), "SegmentationClassAug");
  test::write_voc_sample(d.path(), "b", test::label_map(8, 8, {{4, 0, 0, 2, 2}}), "SegmentationClassAug");
  test::write_lines(d / "splits/train_aug.txt",
                    {"/JPEGImages/a.jpg /SegmentationClassAug/a.png", "/JPEGImages/b.jpg /SegmentationClassAug/b.png"});
  auto ds = data::make_dataset(cfg_of("voc", d.str()), "train_aug");
  ASSERT_EQ(ds->size(), 2u);
  EXPECT_EQ(ds->id(1), "b");
  EXPECT_EQ(ds->load(1).mask.at<uint8_t>(0, 0), 4);
  // A plain id list finds masks in SegmentationClassAug when SegmentationClass is absent.
  test::write_lines(d / "ImageSets/Segmentation/val.txt", {"a"});
  EXPECT_EQ(data::make_dataset(cfg_of("voc", d.str()), "val")->load(0).mask.at<uint8_t>(0, 0), 3);
}

TEST(Datasets, Ade20kKeepsZeroAsBackground) {
  TempDir d;
  for (const char* sub : {"images/training", "annotations/training"}) std::filesystem::create_directories(d / sub);
  cv::Mat m = test::label_map(8, 8, {{150, 0, 0, 3, 3}, {1, 4, 4, 2, 2}});
  data::write_jpeg((d / "images/training/ADE_train_00000001.jpg").string(), test::image_for(m));
  data::write_image((d / "annotations/training/ADE_train_00000001.png").string(), m);
  auto ds = data::make_dataset(cfg_of("ade20k", d.str()), "train");
  ASSERT_EQ(ds->size(), 1u);
  EXPECT_EQ(ds->info().num_classes, 151);
  EXPECT_EQ(ds->info().class_names[150], "flag");
  auto s = ds->load(0);
  EXPECT_EQ(s.mask.at<uint8_t>(0, 0), 150);
  EXPECT_EQ(s.mask.at<uint8_t>(7, 7), 0);
}

TEST(Datasets, CityscapesMapsLabelIdsToTrainIds) {
  TempDir d;
  std::filesystem::create_directories(d / "leftImg8bit/val/ulm");
  std::filesystem::create_directories(d / "gtFine/val/ulm");
  // labelIds: 7 road -> 0, 26 car -> 13, 33 bicycle -> 18, 1 ego vehicle -> 255.
  cv::Mat ids = test::label_map(8, 4, {{7, 0, 0, 2, 4}, {26, 2, 0, 2, 4}, {33, 4, 0, 2, 4}, {1, 6, 0, 2, 4}});
  data::write_image((d / "leftImg8bit/val/ulm/ulm_000000_000019_leftImg8bit.png").string(), test::image_for(ids));
  data::write_image((d / "gtFine/val/ulm/ulm_000000_000019_gtFine_labelIds.png").string(), ids);
  auto ds = data::make_dataset(cfg_of("cityscapes", d.str()), "val");
  ASSERT_EQ(ds->size(), 1u);
  EXPECT_EQ(ds->id(0), "ulm_000000_000019");
  auto m = ds->load(0).mask;
  EXPECT_EQ(m.at<uint8_t>(0, 0), 0);
  EXPECT_EQ(m.at<uint8_t>(0, 2), 13);
  EXPECT_EQ(m.at<uint8_t>(0, 4), 18);
  EXPECT_EQ(m.at<uint8_t>(0, 6), 255);
}

TEST(Datasets, FolderFormat) {
  TempDir d;
  test::write_folder_dataset(d.path(), "train", {test::label_map(6, 6, {{2, 0, 0, 3, 3}})}, "img");
  auto c = cfg_of("folder", d.str());
  c.num_classes = 3;
  auto ds = data::make_dataset(c, "train");
  EXPECT_EQ(ds->info().class_names[2], "class_2");
  EXPECT_EQ(ds->load(0).mask.at<uint8_t>(0, 0), 2);
}

TEST(Datasets, BadInputGivesOneLineErrors) {
  TempDir d;
  expect_error([&] { data::make_dataset(cfg_of("voc", (d / "nowhere").string()), "train"); },
               {"dataset root", "nowhere", "does not exist"});
  expect_error([&] { data::make_dataset(cfg_of("voc", d.str()), "train"); }, {"split 'train'", "no list file"});
  // A mask whose size differs from its image.
  test::write_voc_sample(d.path(), "x", test::label_map(8, 8, {{1, 0, 0, 2, 2}}));
  data::write_label_png((d / "SegmentationClass/x.png").string(), test::label_map(6, 8, {}), data::voc_palette());
  // A label value outside the dataset's table (VOC has 21 classes).
  test::write_voc_sample(d.path(), "y", test::label_map(8, 8, {{42, 0, 0, 2, 2}}));
  // A corrupt image.
  test::write_voc_sample(d.path(), "z", test::label_map(8, 8, {{1, 0, 0, 2, 2}}));
  std::ofstream((d / "JPEGImages/z.jpg").string()) << "garbage";
  test::write_lines(d / "ImageSets/Segmentation/train.txt", {"x", "y", "z", "missing"});
  auto ds = data::make_dataset(cfg_of("voc", d.str()), "train");
  expect_error([&] { ds->load(0); }, {"x.png", "6x8", "x.jpg", "8x8"});
  expect_error([&] { ds->load(1); }, {"y.png", "value 42", "21 classes"});
  expect_error([&] { ds->load(2); }, {"z.jpg", "not a PNG, JPEG or BMP"});
  expect_error([&] { ds->load(3); }, {"missing.jpg", "does not exist"});
  // The class index reads masks only, and reports the bad label too.
  expect_error([&] { data::build_class_index(*ds, "", 2); }, {"label file"});
  auto bad = cfg_of("nope", d.str());
  expect_error([&] { data::make_dataset(bad, "train"); }, {"unknown dataset 'nope'", "voc"});
}

TEST(Datasets, ClassIndexIsCached) {
  TempDir d;
  test::write_voc_sample(d.path(), "a", test::label_map(8, 8, {{5, 0, 0, 2, 2}}));
  test::write_lines(d / "ImageSets/Segmentation/train.txt", {"a"});
  auto ds = data::make_dataset(cfg_of("voc", d.str()), "train");
  auto first = data::build_class_index(*ds, (d / "cache").string(), 1);
  ASSERT_EQ(std::distance(std::filesystem::directory_iterator(d / "cache"), {}), 1);
  auto second = data::build_class_index(*ds, (d / "cache").string(), 1);
  EXPECT_EQ(first, second);
  // Editing a mask in place invalidates the cache (size and time are part of the key).
  data::write_label_png((d / "SegmentationClass/a.png").string(), test::label_map(8, 8, {{7, 0, 0, 3, 3}}),
                        data::voc_palette());
  std::filesystem::last_write_time(
      d / "SegmentationClass/a.png",
      std::filesystem::last_write_time(d / "SegmentationClass/a.png") + std::chrono::seconds(5));
  auto third = data::build_class_index(*ds, (d / "cache").string(), 1);
  EXPECT_TRUE(third[0][7]);
  EXPECT_FALSE(third[0][5]);
}

TEST(Datasets, CityscapesCityTasks) {
  TempDir d;
  // Three cities with 5 frames each, spread over the official train and val folders.
  const std::vector<std::pair<std::string, std::string>> cities{
      {"train", "aachen"}, {"train", "bremen"}, {"val", "lindau"}};
  cv::Mat ids = test::label_map(8, 4, {{7, 0, 0, 8, 4}});
  for (const auto& [split, city] : cities) {
    std::filesystem::create_directories(d / ("leftImg8bit/" + split + "/" + city));
    std::filesystem::create_directories(d / ("gtFine/" + split + "/" + city));
    for (int i = 0; i < 5; ++i) {
      const std::string stem = fmt::format("{}_000000_{:06d}", city, i);
      data::write_image((d / ("leftImg8bit/" + split + "/" + city + "/" + stem + "_leftImg8bit.png")).string(),
                        test::image_for(ids));
      data::write_image((d / ("gtFine/" + split + "/" + city + "/" + stem + "_gtFine_labelIds.png")).string(), ids);
    }
  }
  auto c = cfg_of("cityscapes", d.str());
  c.scenes = {"aachen", "lindau"};
  auto train = data::make_dataset(c, "cities_train"), val = data::make_dataset(c, "cities_val");
  EXPECT_EQ(train->size(), 8u);  // 80 % of 10 frames, from train and val folders alike
  EXPECT_EQ(val->size(), 2u);
  std::set<std::string> seen;
  for (const auto* ds : {train.get(), val.get()})
    for (size_t i = 0; i < ds->size(); ++i) {
      EXPECT_TRUE(seen.insert(ds->id(i)).second) << ds->id(i);  // disjoint
      EXPECT_EQ(ds->id(i).rfind("bremen", 0), std::string::npos);
    }
  EXPECT_EQ(data::make_dataset(c, "cities_val")->id(0), val->id(0));  // a fixed shuffle
  EXPECT_EQ(data::make_dataset(c, "train")->size(), 5u);              // official split, aachen only
  c.scenes = {"atlantis"};
  test::expect_error([&] { data::make_dataset(c, "cities_train"); }, {"atlantis", "dataset.scenes"});
  // scenario.city_task expands into PLOP's steps of cities.
  const std::string yaml = fmt::format(
      "dataset: {{name: cityscapes, root: {}, train_split: cities_train, val_split: cities_val, test_split: "
      "cities_val}}\n"
      "train: {{iterations: 1}}\nscenario: {{type: domain, city_task: {}}}\n",
      d.str(), "11-5");
  core::write_text_atomic((d / "c.yaml").string(), yaml);
  auto cfg = config::parse_experiment(config::load({(d / "c.yaml").string(), {}, ""}));
  ASSERT_EQ(cfg.scenario.environments.size(), 3u);
  EXPECT_EQ(cfg.scenario.environments[0].scenes.size(), 11u);
  EXPECT_EQ(cfg.scenario.environments[1].scenes.front(), "dusseldorf");
  EXPECT_EQ(cfg.scenario.environments[2].scenes.back(), "munster");
  std::string one = yaml;
  one.replace(one.find("11-5"), 4, "1-1");
  core::write_text_atomic((d / "c.yaml").string(), one);
  EXPECT_EQ(config::parse_experiment(config::load({(d / "c.yaml").string(), {}, ""})).scenario.environments.size(),
            21u);
  one.replace(one.find("1-1"), 3, "7-7");
  core::write_text_atomic((d / "c.yaml").string(), one);
  test::expect_error(
      [&] {
        config::parse_experiment(config::load({(d / "c.yaml").string(), {}, ""}));
      },
      {"scenario.city_task", "'7-7'", "11-5"});
}
