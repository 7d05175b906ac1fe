// NYUv2, ML-Hypersim and ScanNet loaders, each on a tiny tree written in the real on-disk format
// (HDF5 / MATLAB v7.3 with its 512-byte user block, MATLAB v5 metadata, float16 HDF5 frames,
// 16-bit PNGs and ScanNet's label table), with values placed so that a transposed read, an
// off-by-one split index or a wrong label mapping shows.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <matio.h>

#include <fstream>

#include "../src/data/datasets/hdf5_file.h"
#include "../src/data/datasets/matlab_v5.h"
#include "cseg/data/datasets.h"
#include "fixtures.h"

using namespace cseg;
namespace fs = std::filesystem;

namespace {

/// Writes one dataset `name` of `dims` from `data` (in memory type `memory_type`, stored as
/// `file_type`) into an open HDF5 file.
void write_dataset(hid_t file, const std::string& name, const std::vector<hsize_t>& dims, hid_t file_type,
                   hid_t memory_type, const void* data) {
  hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
  hid_t set = H5Dcreate2(file, name.c_str(), file_type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  ASSERT_GE(set, 0) << name;
  ASSERT_GE(H5Dwrite(set, memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), 0) << name;
  H5Dclose(set);
  H5Sclose(space);
}

/// IEEE half precision, as h5py stores numpy's float16 (Hypersim's files).
hid_t float16_type() {
  hid_t t = H5Tcopy(H5T_IEEE_F32LE);
  H5Tset_fields(t, 15, 10, 5, 0, 10);
  H5Tset_precision(t, 16);
  H5Tset_size(t, 2);
  H5Tset_ebias(t, 15);
  return t;
}

void write_hdf5_single(const fs::path& path, const std::vector<hsize_t>& dims, const std::vector<float>& data,
                       bool half, hid_t file_type_override = -1) {
  fs::create_directories(path.parent_path());
  hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hid_t type = file_type_override >= 0 ? file_type_override : half ? float16_type() : H5Tcopy(H5T_IEEE_F32LE);
  write_dataset(file, "dataset", dims, type, H5T_NATIVE_FLOAT, data.data());
  H5Tclose(type);
  H5Fclose(file);
}

void write_mat_v5(const fs::path& path, const std::vector<std::pair<std::string, std::vector<double>>>& vars) {
  mat_t* mat = Mat_CreateVer(path.c_str(), nullptr, MAT_FT_MAT5);
  ASSERT_TRUE(mat);
  for (const auto& [name, values] : vars) {
    size_t dims[2] = {values.size(), 1};
    matvar_t* v =
        Mat_VarCreate(name.c_str(), MAT_C_DOUBLE, MAT_T_DOUBLE, 2, dims, const_cast<double*>(values.data()), 0);
    ASSERT_TRUE(v);
    Mat_VarWrite(mat, v, MAT_COMPRESSION_NONE);
    Mat_VarFree(v);
  }
  Mat_Close(mat);
}

data::DatasetOptions dataset(const std::string& name, const fs::path& root) {
  data::DatasetOptions c;
  c.name = name;
  c.root = root.string();
  return c;
}

}  // namespace

TEST(IndoorDatasets, NyuLabelledMatThroughHdf5) {
  test::TempDir d;
  // 3 frames of 4 (W) x 3 (H), stored as MATLAB writes them: images (N, 3, W, H).
  const int n = 3, w = 4, h = 3;
  std::vector<uint8_t> images(n * 3 * w * h);
  std::vector<uint16_t> labels(n * w * h);
  std::vector<float> depths(n * w * h);
  for (int i = 0; i < n; ++i)
    for (int x = 0; x < w; ++x)
      for (int y = 0; y < h; ++y) {
        for (int c = 0; c < 3; ++c) images[((i * 3 + c) * w + x) * h + y] = uint8_t(100 * c + 10 * x + y + i);
        labels[(i * w + x) * h + y] = uint16_t(x == 0 ? 0 : x == 1 ? 5 : 894);  // unlabelled, raw 5, raw 894
        depths[(i * w + x) * h + y] = 1.0f + 0.5f * y + i;
      }
  {
    hid_t plist = H5Pcreate(H5P_FILE_CREATE);
    H5Pset_userblock(plist, 512);  // MATLAB v7.3's header
    hid_t file = H5Fcreate((d / "nyu_depth_v2_labeled.mat").c_str(), H5F_ACC_TRUNC, plist, H5P_DEFAULT);
    write_dataset(file, "images", {hsize_t(n), 3, hsize_t(w), hsize_t(h)}, H5T_STD_U8LE, H5T_NATIVE_UINT8,
                  images.data());
    write_dataset(file, "labels", {hsize_t(n), hsize_t(w), hsize_t(h)}, H5T_STD_U16LE, H5T_NATIVE_UINT16,
                  labels.data());
    write_dataset(file, "depths", {hsize_t(n), hsize_t(w), hsize_t(h)}, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT,
                  depths.data());
    H5Fclose(file);
    H5Pclose(plist);
  }
  std::vector<double> map_class(894, 40);  // every raw class "otherprop" ...
  map_class[5 - 1] = 7;                    // ... but raw 5 is "table"
  map_class[894 - 1] = 1;                  // and raw 894 "wall"
  write_mat_v5(d / "classMapping40.mat", {{"mapClass", map_class}});
  write_mat_v5(d / "splits.mat", {{"trainNdxs", {1, 3}}, {"testNdxs", {2}}});

  auto train = data::make_dataset(dataset("nyuv2", d.path()), "train");
  ASSERT_EQ(train->size(), 2u);
  EXPECT_EQ(train->id(1), "0003");  // 1-based frame numbers
  EXPECT_EQ(train->info().num_classes, 41);
  EXPECT_EQ(train->info().class_names[7], "table");
  auto s = train->load(1);  // frame 3 = index 2
  ASSERT_EQ(s.image.size(), cv::Size(w, h));
  const auto px = s.image.at<cv::Vec3b>(1, 2);  // y = 1, x = 2
  EXPECT_EQ(px, cv::Vec3b(10 * 2 + 1 + 2, 100 + 10 * 2 + 1 + 2, 200 + 10 * 2 + 1 + 2));
  EXPECT_EQ(s.mask.at<uint8_t>(2, 0), 255);  // unlabelled
  EXPECT_EQ(s.mask.at<uint8_t>(0, 1), 7);
  EXPECT_EQ(s.mask.at<uint8_t>(2, 3), 1);
  ASSERT_TRUE(train->has_depth());
  EXPECT_FLOAT_EQ(train->load_depth(1).at<float>(2, 0), 1.0f + 0.5f * 2 + 2);
  EXPECT_EQ(data::make_dataset(dataset("nyuv2", d / "nyu_depth_v2_labeled.mat"), "test")->size(), 1u);

  // Errors name the file and what was expected.
  test::expect_error([&] { data::make_dataset(dataset("nyuv2", d.path()), "val"); }, {"'val'", "train and test"});
  write_mat_v5(d / "splits.mat", {{"trainNdxs", {1, 4}}, {"testNdxs", {2}}});
  test::expect_error([&] { data::make_dataset(dataset("nyuv2", d.path()), "train")->load(1); },
                     {"nyu_depth_v2_labeled.mat", "3 frames", "frame 4"});
  write_mat_v5(d / "classMapping40.mat", {{"className", {1}}});
  test::expect_error([&] { data::make_dataset(dataset("nyuv2", d.path()), "test"); },
                     {"classMapping40.mat", "mapClass"});
  fs::remove(d / "classMapping40.mat");
  std::ofstream((d / "classMapping40.mat").string()) << "not a mat file";
  test::expect_error([&] { data::make_dataset(dataset("nyuv2", d.path()), "test"); }, {"classMapping40.mat"});
}

TEST(IndoorDatasets, NyuExtractedFolders) {
  test::TempDir d;
  fs::create_directories(d / "test/rgb");
  fs::create_directories(d / "test/labels_40");
  fs::create_directories(d / "test/depth");
  cv::Mat labels = test::label_map(8, 6, {{3, 1, 1, 3, 3}});
  labels.at<uint8_t>(5, 7) = 40;
  data::write_image((d / "test/rgb/0001.png").string(), cv::Mat(6, 8, CV_8UC3, cv::Scalar(1, 2, 3)));
  data::write_label_png((d / "test/labels_40/0001.png").string(), labels, data::voc_palette());
  data::write_depth_png((d / "test/depth/0001.png").string(), cv::Mat(6, 8, CV_32FC1, cv::Scalar(2.5f)));
  auto ds = data::make_dataset(dataset("nyuv2", d.path()), "test");
  ASSERT_EQ(ds->size(), 1u);
  auto m = ds->load(0).mask;
  EXPECT_EQ(m.at<uint8_t>(0, 0), 255);  // 0 = unlabelled
  EXPECT_EQ(m.at<uint8_t>(2, 2), 3);
  EXPECT_EQ(m.at<uint8_t>(5, 7), 40);
  EXPECT_NEAR(ds->load_depth(0).at<float>(3, 3), 2.5, 1e-3);
  labels.at<uint8_t>(0, 0) = 41;
  data::write_label_png((d / "test/labels_40/0001.png").string(), labels, data::voc_palette());
  test::expect_error([&] { ds->load(0); }, {"0001.png", "41"});
  test::expect_error([&] { data::make_dataset(dataset("nyuv2", d.path()), "train"); }, {"labels_40", "train"});
}

TEST(IndoorDatasets, HypersimFloat16Frames) {
  test::TempDir d;
  const int w = 5, h = 4;
  auto write_frame = [&](const std::string& scene, const std::string& frame, float level, int16_t label) {
    const fs::path images = d / scene / "images";
    std::vector<float> colour(w * h * 3), depth(w * h, 2.25f);
    for (int p = 0; p < w * h; ++p)
      for (int c = 0; c < 3; ++c) colour[p * 3 + c] = level * (1 + c);
    write_hdf5_single(images / "scene_cam_00_final_hdf5" / ("frame." + frame + ".color.hdf5"),
                      {hsize_t(h), hsize_t(w), 3}, colour, true);
    std::vector<float> sem(w * h, label);
    sem[0] = -1;  // unlabelled
    hid_t i16 = H5Tcopy(H5T_STD_I16LE);
    write_hdf5_single(images / "scene_cam_00_geometry_hdf5" / ("frame." + frame + ".semantic.hdf5"),
                      {hsize_t(h), hsize_t(w)}, sem, false, i16);
    write_hdf5_single(images / "scene_cam_00_geometry_hdf5" / ("frame." + frame + ".depth_meters.hdf5"),
                      {hsize_t(h), hsize_t(w)}, depth, true);
  };
  write_frame("ai_001_001", "0000", 0.1f, 5);
  write_frame("ai_001_001", "0001", 0.2f, 8);
  write_frame("ai_002_001", "0000", 0.3f, 22);
  std::ofstream((d / "metadata_images_split_scene_v1.csv").string())
      << "scene_name,camera_name,frame_id,included_in_public_release,exclude_reason,split_partition_name\n"
      << "ai_001_001,cam_00,0,True,,train\nai_001_001,cam_00,1,False,bad,train\nai_002_001,cam_00,0,True,,val\n";
  auto train = data::make_dataset(dataset("hypersim", d.path()), "train");
  ASSERT_EQ(train->size(), 1u);  // frame 1 is not in the public release
  EXPECT_EQ(train->id(0), "ai_001_001_cam_00_0000");
  auto s = train->load(0);
  ASSERT_EQ(s.image.size(), cv::Size(w, h));
  EXPECT_EQ(s.mask.at<uint8_t>(0, 0), 255);
  EXPECT_EQ(s.mask.at<uint8_t>(3, 4), 5);
  // Tone mapping: a uniform frame's brightness percentile maps to 0.8 (204 of 255) after gamma.
  const auto px = s.image.at<cv::Vec3b>(2, 2);
  const double brightness = 0.3 * px[0] + 0.59 * px[1] + 0.11 * px[2];
  EXPECT_GT(px[2], px[0]);  // blue was 3x red in linear light
  EXPECT_NEAR(std::pow(0.3 * std::pow(px[0] / 255.0, 2.2) + 0.59 * std::pow(px[1] / 255.0, 2.2) +
                           0.11 * std::pow(px[2] / 255.0, 2.2),
                       1 / 2.2),
              0.8, 0.02)
      << brightness;
  EXPECT_NEAR(train->load_depth(0).at<float>(1, 1), 2.25, 1e-3);  // float16 read as float
  // Scenes narrow a split; the whole tree without the CSV is split "all".
  auto c = dataset("hypersim", d.path());
  c.scenes = {"ai_002_001"};
  EXPECT_EQ(data::make_dataset(c, "val")->size(), 1u);
  test::expect_error([&] { data::make_dataset(c, "train"); }, {"holds no frames"});
  c.scenes = {"ai_404"};
  test::expect_error([&] { data::make_dataset(c, "val"); }, {"ai_404", "dataset.scenes"});
  fs::remove(d / "metadata_images_split_scene_v1.csv");
  EXPECT_EQ(data::make_dataset(dataset("hypersim", d.path()), "all")->size(), 3u);
  test::expect_error([&] { data::make_dataset(dataset("hypersim", d.path()), "train"); },
                     {"metadata_images_split_scene_v1.csv", "'all'"});
  // A label outside NYU-40 names the file.
  std::vector<float> bad(w * h, 41);
  hid_t i16 = H5Tcopy(H5T_STD_I16LE);
  write_hdf5_single(d / "ai_002_001/images/scene_cam_00_geometry_hdf5/frame.0000.semantic.hdf5",
                    {hsize_t(h), hsize_t(w)}, bad, false, i16);
  c.scenes = {"ai_002_001"};
  test::expect_error([&] { data::make_dataset(c, "all")->load(0); }, {"frame.0000.semantic.hdf5", "41", "NYU-40"});
}

TEST(IndoorDatasets, ScanNetExportedFrames) {
  test::TempDir d;
  const fs::path scene = d / "scans/scene0000_00";
  for (const char* sub : {"color", "label-filt", "depth"}) fs::create_directories(scene / sub);
  fs::create_directories(d / "scans/scene0001_00/label-filt");
  // ScanNet's label table: id -> nyu40id (1 wall -> 1, 2 chair -> 5, 7 "object" -> 40, 9 with no NYU class).
  std::ofstream((d / "scannetv2-labels.combined.tsv").string())
      << "id\traw_category\tcategory\tcount\tnyu40id\teigen13id\tnyuClass\tnyu40class\n"
      << "1\twall\twall\t8277\t1\t12\twall\twall\n2\tchair\tchair\t4646\t5\t4\tchair\tchair\n"
      << "7\tobject\tobject\t10\t40\t7\tobject\totherprop\n9\tceiling fan\tceiling fan\t10\t0\t0\t\t\n";
  std::ofstream((d / "scannetv2_train.txt").string()) << "scene0000_00\n";
  cv::Mat labels(6, 8, CV_16UC1, cv::Scalar(1));
  labels(cv::Rect(0, 0, 2, 2)).setTo(2);
  labels.at<uint16_t>(5, 7) = 7;
  labels.at<uint16_t>(5, 6) = 9;
  labels.at<uint16_t>(5, 5) = 0;
  for (int i : {10, 2}) {  // frame numbers sort as numbers, not as text
    data::write_image((scene / "label-filt" / (std::to_string(i) + ".png")).string(), labels);
    data::write_image((scene / "color" / (std::to_string(i) + ".jpg")).string(),
                      cv::Mat(12, 16, CV_8UC3, cv::Scalar(0, 0, 200)));
    cv::Mat depth(6, 8, CV_16UC1, cv::Scalar(1500));
    data::write_image((scene / "depth" / (std::to_string(i) + ".png")).string(), depth);
  }
  auto ds = data::make_dataset(dataset("scannet", d.path()), "train");
  ASSERT_EQ(ds->size(), 2u);
  EXPECT_EQ(ds->id(0), "scene0000_00_000002");
  auto s = ds->load(1);
  EXPECT_EQ(s.image.size(), cv::Size(8, 6));       // colour resized to the labels' size
  EXPECT_GT(s.image.at<cv::Vec3b>(3, 3)[0], 150);  // RGB order: the BGR (0, 0, 200) file is red
  EXPECT_EQ(s.mask.at<uint8_t>(0, 0), 5);
  EXPECT_EQ(s.mask.at<uint8_t>(3, 3), 1);
  EXPECT_EQ(s.mask.at<uint8_t>(5, 7), 40);
  EXPECT_EQ(s.mask.at<uint8_t>(5, 6), 255);  // no NYU-40 class
  EXPECT_EQ(s.mask.at<uint8_t>(5, 5), 255);  // unannotated
  EXPECT_NEAR(ds->load_depth(0).at<float>(2, 2), 1.5, 1e-6);
  labels.at<uint16_t>(0, 7) = 1234;
  data::write_image((scene / "label-filt/2.png").string(), labels);
  test::expect_error([&] { ds->load(0); }, {"2.png", "1234", "scannetv2-labels.combined.tsv"});
  fs::remove(d / "scannetv2-labels.combined.tsv");
  test::expect_error([&] { data::make_dataset(dataset("scannet", d.path()), "train"); },
                     {"scannetv2-labels.combined.tsv", "does not exist"});
}

TEST(IndoorDatasets, CocoStuffThroughTheShippedNyu40LabelMap) {
  test::TempDir d;
  cv::Mat raw(4, 4, CV_8UC1, cv::Scalar(255));  // unlabelled
  raw.at<uint8_t>(0, 0) = 0;                    // person (id 1)
  raw.at<uint8_t>(0, 1) = 61;                   // chair (id 62)
  raw.at<uint8_t>(0, 2) = 2;                    // car (id 3): not indoor, ignored
  raw.at<uint8_t>(0, 3) = 171;                  // wall-concrete (id 172)
  test::write_folder_dataset(d.path(), "train", {raw}, "c");
  auto c = dataset("folder", d.path());
  c.num_classes = 41;
  c.label_space = "nyu40";
  c.label_map = std::string(CSEG_SOURCE_DIR) + "/configs/label_maps/coco_stuff_to_nyu40.txt";
  auto m = data::make_dataset(c, "train")->load(0).mask;
  EXPECT_EQ(m.at<uint8_t>(0, 0), 31);
  EXPECT_EQ(m.at<uint8_t>(0, 1), 5);
  EXPECT_EQ(m.at<uint8_t>(0, 2), 255);
  EXPECT_EQ(m.at<uint8_t>(0, 3), 1);  // wall
  EXPECT_EQ(m.at<uint8_t>(3, 3), 255);
  raw.at<uint8_t>(1, 1) = 11;  // COCO id 12 is unused: not a COCO-Stuff value
  test::write_folder_dataset(d.path(), "train", {raw}, "c");
  test::expect_error([&] { data::make_dataset(c, "train")->load(0); }, {"c0.png", "value 11"});
  // The map file itself is checked line by line.
  std::ofstream((d / "bad.txt").string()) << "# comment\n3 7\n3 8\n";
  c.label_map = (d / "bad.txt").string();
  test::expect_error([&] { data::make_dataset(c, "train"); }, {"bad.txt", "line 3", "mapped twice"});
  std::ofstream((d / "bad.txt").string()) << "3 41\n";
  test::expect_error([&] { data::make_dataset(c, "train"); }, {"bad.txt", "line 1", "label 41"});
}

// Frame sizes come from the files. An empty frame (0 rows) made the Hypersim tone mapping index
// an empty vector; a claim of 10^10 pixels in a file of a few kilobytes (HDF5 allocates storage
// only when written) made the reader allocate 40 GB. Both are errors naming the file.
TEST(IndoorDatasets, CraftedHypersimFrameSizesAreErrors) {
  test::TempDir d;
  const int w = 5, h = 4;
  const fs::path frames = d / "ai_001_001/images";
  std::vector<float> colour(w * h * 3, 0.5f), sem(w * h, 3);
  write_hdf5_single(frames / "scene_cam_00_final_hdf5/frame.0000.color.hdf5", {hsize_t(h), hsize_t(w), 3}, colour,
                    true);
  write_hdf5_single(frames / "scene_cam_00_geometry_hdf5/frame.0000.semantic.hdf5", {0, hsize_t(w)},
                    std::vector<float>(1), false, H5Tcopy(H5T_STD_I16LE));
  {
    const fs::path depth = frames / "scene_cam_00_geometry_hdf5/frame.0000.depth_meters.hdf5";
    hid_t file = H5Fcreate(depth.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    const hsize_t dims[2] = {100000, 100000};
    hid_t space = H5Screate_simple(2, dims, nullptr);
    hid_t set = H5Dcreate2(file, "dataset", H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ASSERT_GE(set, 0);
    H5Dclose(set);
    H5Sclose(space);
    H5Fclose(file);
    ASSERT_LT(fs::file_size(depth), 100000u);
  }
  auto all = data::make_dataset(dataset("hypersim", d.path()), "all");
  ASSERT_EQ(all->size(), 1u);
  test::expect_error([&] { all->load(0); }, {"frame.0000.semantic.hdf5", "0 x 5 pixels"});
  test::expect_error([&] { all->load_depth(0); }, {"frame.0000.depth_meters.hdf5", "100000 x 100000 pixels"});
}

// cseg's MATLAB v5 reader against libmatio's writer: doubles, other classes and narrower stored
// types, uncompressed and zlib-compressed; then files the fuzzer made, which sent libmatio (the
// reader before) to allocate, and in one case fill, 4 GB.
TEST(IndoorDatasets, MatlabV5ReaderAgreesWithLibmatioAndRefusesCraftedFiles) {
  test::TempDir d;
  for (auto compression : {MAT_COMPRESSION_NONE, MAT_COMPRESSION_ZLIB}) {
    SCOPED_TRACE(compression);
    const std::string path = (d / "v.mat").string();
    mat_t* mat = Mat_CreateVer(path.c_str(), nullptr, MAT_FT_MAT5);
    ASSERT_TRUE(mat);
    std::vector<double> doubles{1.5, -2, 40, 894};
    std::vector<uint8_t> bytes{0, 7, 255};
    std::vector<int32_t> ints{-5, 70000};
    size_t d4[2] = {4, 1}, d3[2] = {1, 3}, d2[2] = {2, 1};
    const struct {
      const char* name;
      matio_classes cls;
      matio_types type;
      size_t* dims;
      void* data;
    } vars[] = {{"a", MAT_C_DOUBLE, MAT_T_DOUBLE, d4, doubles.data()},
                {"b", MAT_C_UINT8, MAT_T_UINT8, d3, bytes.data()},
                {"c", MAT_C_DOUBLE, MAT_T_UINT8, d3, bytes.data()},  // a double array stored as bytes
                {"e", MAT_C_INT32, MAT_T_INT32, d2, ints.data()}};
    for (const auto& v : vars) {
      matvar_t* m = Mat_VarCreate(v.name, v.cls, v.type, 2, v.dims, v.data, 0);
      ASSERT_TRUE(m);
      Mat_VarWrite(mat, m, compression);
      Mat_VarFree(m);
    }
    Mat_Close(mat);
    EXPECT_EQ(data::matlab::read_numbers(path, "a"), doubles);
    EXPECT_EQ(data::matlab::read_numbers(path, "b"), (std::vector<double>{0, 7, 255}));
    EXPECT_EQ(data::matlab::read_numbers(path, "c"), (std::vector<double>{0, 7, 255}));
    EXPECT_EQ(data::matlab::read_numbers(path, "e"), (std::vector<double>{-5, 70000}));
    test::expect_error([&] { data::matlab::read_numbers(path, "zz"); }, {"v.mat", "no variable 'zz'"});
  }
  // The first: a seed whose later element the fuzzer damaged (libmatio allocated 4 GB for it);
  // its first variable is intact. The second: a compressed element declaring more bytes than the
  // file holds (libmatio filled 4 GB). Both are read without any large allocation.
  const std::string fuzz = std::string(CSEG_SOURCE_DIR) + "/tests/files/fuzz/";
  EXPECT_EQ(data::matlab::read_numbers(fuzz + "matlab_claims_4gb.mat", "mapClass"),
            (std::vector<double>{1, 2, 3, 4, 40}));
  test::expect_error([&] { data::matlab::read_numbers(fuzz + "matlab_claims_4gb.mat", "trainNdxs"); },
                     {"matlab_claims_4gb.mat", "does not inflate"});
  test::expect_error([&] { data::matlab::read_numbers(fuzz + "matlab_inflates_to_4gb.mat", "mapClass"); },
                     {"matlab_inflates_to_4gb.mat", "declares 32825 bytes"});
}

// libhdf5 runs in a helper process (hdf5_file.cpp): a file the fuzzer made, on which Debian 12's
// libhdf5 1.10.8 reads through a null pointer while looking a dataset up, is an error naming the
// file and saying libhdf5 crashed; the test process lives on, and the next file is read by a new
// helper.
TEST(IndoorDatasets, FileThatCrashesLibhdf5IsAnErrorAndReadingGoesOn) {
  const std::string crafted = std::string(CSEG_SOURCE_DIR) + "/tests/files/fuzz/hdf5_crashes_libhdf5.h5";
  test::TempDir d;
  const auto good = d / "good.hdf5";
  write_hdf5_single(good, {2, 3}, {1, 2, 3, 4, 5, 6}, false);
  data::hdf5::File before(good.string());
  EXPECT_EQ(before.read_slab<float>("dataset", 1), (std::vector<float>{4, 5, 6}));
  data::hdf5::File file(crafted);
  test::expect_error([&] { file.dims("dataset"); }, {"hdf5_crashes_libhdf5.h5", "libhdf5 crashed (signal"});
  // A file opened in the helper that crashed is opened again in the new one.
  EXPECT_EQ(before.dims("dataset"), (std::vector<uint64_t>{2, 3}));
  EXPECT_EQ(data::hdf5::File(good.string()).read<float>("dataset"), (std::vector<float>{1, 2, 3, 4, 5, 6}));
}
