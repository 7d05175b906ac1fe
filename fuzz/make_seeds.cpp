// Writes the fuzz targets' seed corpora: small valid files of each format, made by the same
// writers the tests use (cseg's PNG/JPEG/depth/flow writers, HDF5 and libmatio), plus the
// torch.save and config files the repository carries (copied by scripts/fuzz.sh).
//   make_seeds OUT   -> OUT/fuzz_image, OUT/fuzz_hdf5, OUT/fuzz_matlab
#include <hdf5.h>
#include <matio.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <vector>

#include "cseg/data/image_io.h"

namespace fs = std::filesystem;
using namespace cseg;

namespace {

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}

/// The image target's inputs start with a byte that picks the reader: one seed per reader.
void image_seeds(const fs::path& out) {
  const fs::path tmp = out / "tmp";
  fs::create_directories(tmp);
  cv::Mat labels(12, 9, CV_8UC1);
  for (int y = 0; y < labels.rows; ++y)
    for (int x = 0; x < labels.cols; ++x) labels.at<uint8_t>(y, x) = uint8_t((x / 3 + y / 4) % 21);
  labels.at<uint8_t>(0, 0) = 255;
  cv::Mat rgb(12, 9, CV_8UC3, cv::Scalar(200, 30, 90)), metres(12, 9, CV_32FC1, cv::Scalar(2.5f)),
      flow(12, 9, CV_32FC2, cv::Scalar(1.5f, -0.5f));
  data::write_label_png((tmp / "palette.png").string(), labels, data::voc_palette());
  cv::imwrite((tmp / "gray.png").string(), labels);
  data::write_jpeg((tmp / "photo.jpg").string(), rgb);
  cv::imwrite((tmp / "progressive.jpg").string(), rgb, {cv::IMWRITE_JPEG_PROGRESSIVE, 1});
  cv::imwrite((tmp / "photo.png").string(), rgb);
  cv::imwrite((tmp / "photo.bmp").string(), rgb);
  data::write_depth_png((tmp / "depth.png").string(), metres);
  data::write_flo((tmp / "flow.flo").string(), flow);
  int n = 0;
  for (const auto& e : fs::directory_iterator(tmp))
    for (char reader = 0; reader < 4; ++reader) write(out / ("seed" + std::to_string(n++)), reader + read(e.path()));
  fs::remove_all(tmp);
}

void dataset(hid_t file, const char* name, std::vector<hsize_t> dims, hid_t file_type, hid_t memory_type,
             const void* data) {
  hid_t space = H5Screate_simple(int(dims.size()), dims.data(), nullptr);
  hid_t set = H5Dcreate2(file, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(set, memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
  H5Dclose(set);
  H5Sclose(space);
}

/// NYUv2's v7.3 layout (images N x 3 x W x H, labels and depths N x W x H) and Hypersim's
/// one-dataset frames (float and int16).
void hdf5_seeds(const fs::path& out) {
  const hsize_t n = 2, w = 4, h = 3;
  std::vector<uint8_t> images(n * 3 * w * h, 7);
  std::vector<uint16_t> labels(n * w * h, 5);
  std::vector<float> depths(n * w * h, 1.25f);
  hid_t file = H5Fcreate((out / "nyu.mat").c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  dataset(file, "images", {n, 3, w, h}, H5T_STD_U8LE, H5T_NATIVE_UINT8, images.data());
  dataset(file, "labels", {n, w, h}, H5T_STD_U16LE, H5T_NATIVE_UINT16, labels.data());
  dataset(file, "depths", {n, w, h}, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, depths.data());
  H5Fclose(file);
  std::vector<float> colour(h * w * 3, 0.25f);
  file = H5Fcreate((out / "color.hdf5").c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  dataset(file, "dataset", {h, w, 3}, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, colour.data());
  H5Fclose(file);
  std::vector<int32_t> semantic(h * w, 3);
  file = H5Fcreate((out / "semantic.hdf5").c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  dataset(file, "dataset", {h, w}, H5T_STD_I16LE, H5T_NATIVE_INT32, semantic.data());
  H5Fclose(file);
}

/// NYUv2's classMapping40.mat and splits.mat shapes, uncompressed and compressed.
void matlab_seeds(const fs::path& out) {
  for (auto compression : {MAT_COMPRESSION_NONE, MAT_COMPRESSION_ZLIB}) {
    const std::string name = compression == MAT_COMPRESSION_NONE ? "plain.mat" : "zlib.mat";
    mat_t* mat = Mat_CreateVer((out / name).c_str(), nullptr, MAT_FT_MAT5);
    std::vector<double> map_class{1, 2, 3, 4, 40}, train{1, 3}, test{2};
    const std::pair<const char*, std::vector<double>*> vars[] = {
        {"mapClass", &map_class}, {"trainNdxs", &train}, {"testNdxs", &test}};
    for (const auto& [var_name, values] : vars) {
      size_t dims[2] = {values->size(), 1};
      matvar_t* v = Mat_VarCreate(var_name, MAT_C_DOUBLE, MAT_T_DOUBLE, 2, dims, values->data(), 0);
      Mat_VarWrite(mat, v, compression);
      Mat_VarFree(v);
    }
    Mat_Close(mat);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_seeds OUT\n";
    return 2;
  }
  const fs::path out = argv[1];
  for (const char* target : {"fuzz_image", "fuzz_hdf5", "fuzz_matlab"}) fs::create_directories(out / target);
  image_seeds(out / "fuzz_image");
  hdf5_seeds(out / "fuzz_hdf5");
  matlab_seeds(out / "fuzz_matlab");
  return 0;
}
