// KITTI semantic segmentation: its training frames in Cityscapes label ids, the fixed train/val
// division of them, and one-line errors for a layout that is not KITTI's.
#include <gtest/gtest.h>

#include <set>

#include "cseg/data/datasets.h"
#include "fixtures.h"

using namespace cseg;
using cseg::test::expect_error;
using cseg::test::TempDir;

namespace {

data::DatasetOptions kitti_at(const std::string& root) {
  data::DatasetOptions c;
  c.name = "kitti";
  c.root = root;
  return c;
}

/// `count` frames 000000_10.png ... as data_semantics.zip names them; frame i has a band of
/// road (id 7), one of car (26) and one of the ego vehicle (1, ignored), shifted by i.
void write_kitti(const std::filesystem::path& root, int count) {
  std::filesystem::create_directories(root / "training/image_2");
  std::filesystem::create_directories(root / "training/semantic");
  for (int i = 0; i < count; ++i) {
    cv::Mat ids = test::label_map(12, 4, {{7, 0, 0, 4, 4}, {26, 4, 0, 4, 4}, {1, 8, 0, 4, 4}});
    ids.at<uint8_t>(0, 0) = static_cast<uint8_t>(i == 0 ? 7 : 26);
    const auto name = fmt::format("{:06d}_10.png", i);
    data::write_image((root / "training/image_2" / name).string(), test::image_for(ids));
    data::write_image((root / "training/semantic" / name).string(), ids);
  }
}

}  // namespace

TEST(Kitti, CityscapesIdsAndAFixedTrainValDivision) {
  TempDir d;
  write_kitti(d.path(), 10);
  auto all = data::make_dataset(kitti_at(d.str()), "training");
  ASSERT_EQ(all->size(), 10u);
  EXPECT_EQ(all->info().name, "kitti");
  EXPECT_EQ(all->info().num_classes, 19);
  EXPECT_EQ(all->info().class_names[13], "car");
  auto mask = all->load(1).mask;
  EXPECT_EQ(mask.size(), cv::Size(12, 4));
  EXPECT_EQ(mask.at<uint8_t>(1, 0), 0);    // road
  EXPECT_EQ(mask.at<uint8_t>(1, 5), 13);   // car
  EXPECT_EQ(mask.at<uint8_t>(1, 9), 255);  // ego vehicle: not a train id
  EXPECT_EQ(mask.at<uint8_t>(0, 0), 13);

  // Every fifth frame in name order is val; train is the rest; together they are training.
  auto train = data::make_dataset(kitti_at(d.str()), "train");
  auto val = data::make_dataset(kitti_at(d.str()), "val");
  ASSERT_EQ(train->size(), 8u);
  ASSERT_EQ(val->size(), 2u);
  EXPECT_EQ(val->id(0), "000004_10");
  EXPECT_EQ(val->id(1), "000009_10");
  std::set<std::string> ids;
  for (size_t i = 0; i < train->size(); ++i) ids.insert(train->id(i));
  for (size_t i = 0; i < val->size(); ++i) ids.insert(val->id(i));
  EXPECT_EQ(ids.size(), 10u);
}

TEST(Kitti, BadInputGivesOneLineErrors) {
  TempDir d;
  expect_error([&] { data::make_dataset(kitti_at(d.str()), "training"); },
               {"kitti", "training/image_2", "data_semantics.zip"});
  write_kitti(d.path(), 3);
  expect_error([&] { data::make_dataset(kitti_at(d.str()), "test"); },
               {"kitti split 'test'", "training", "train and val"});
  // A frame without its label map.
  data::write_image((d / "training/image_2/000099_10.png").string(), cv::Mat(4, 12, CV_8UC3, cv::Scalar(1, 2, 3)));
  expect_error([&] { data::make_dataset(kitti_at(d.str()), "training"); },
               {"000099_10.png", "has no label map", "training/semantic/000099_10.png"});
  std::filesystem::remove(d / "training/image_2/000099_10.png");
  // A label value that is no Cityscapes id.
  data::write_image((d / "training/semantic/000001_10.png").string(), test::label_map(12, 4, {{40, 0, 0, 2, 2}}));
  auto ds = data::make_dataset(kitti_at(d.str()), "training");
  expect_error([&] { ds->load(1); }, {"000001_10.png", "value 40"});
}
