#include "cseg/data/image_io.h"

#include <png.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <opencv2/imgproc.hpp>
#include <vector>

#include "cseg/core/error.h"
#include "cseg/core/files.h"

namespace fs = std::filesystem;

namespace cseg::data {

namespace {

std::vector<unsigned char> read_bytes(const std::string& path, const std::string& what) {
  CSEG_CHECK(fs::exists(path), "{} '{}' does not exist", what, path);
  std::FILE* f = std::fopen(path.c_str(), "rb");
  CSEG_CHECK(f, "{} '{}' cannot be opened", what, path);
  std::vector<unsigned char> bytes;
  unsigned char chunk[1 << 16];
  for (size_t got; (got = std::fread(chunk, 1, sizeof chunk, f)) > 0;) bytes.insert(bytes.end(), chunk, chunk + got);
  const bool failed = std::ferror(f);
  std::fclose(f);
  CSEG_CHECK(!failed, "{} '{}' cannot be read", what, path);
  return bytes;
}

}  // namespace

cv::Mat read_image_file(const std::string& path, Decode mode, const std::string& what) {
  // decode_image checks the format and the header's size claim before decoding anything.
  return decode_image(read_bytes(path, what), mode, fmt::format("{} '{}'", what, path));
}

cv::Mat read_rgb(const std::string& path) {
  cv::Mat bgr = read_image_file(path, Decode::colour, "image file");
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return rgb;
}

namespace {
struct FileCloser {
  void operator()(FILE* f) const {
    if (f) std::fclose(f);
  }
};
using FilePtr = std::unique_ptr<FILE, FileCloser>;

[[noreturn]] void png_error_fn(png_structp png, png_const_charp msg) {
  auto* text = static_cast<std::string*>(png_get_error_ptr(png));
  *text = msg;
  png_longjmp(png, 1);
}
void png_warning_fn(png_structp, png_const_charp) {}
}  // namespace

cv::Mat read_label_png(const std::string& path) {
  CSEG_CHECK(fs::exists(path), "label file '{}' does not exist", path);
  FilePtr file(std::fopen(path.c_str(), "rb"));
  CSEG_CHECK(file, "label file '{}' cannot be opened", path);
  unsigned char sig[8] = {0};
  CSEG_CHECK(std::fread(sig, 1, 8, file.get()) == 8 && png_sig_cmp(sig, 0, 8) == 0, "label file '{}' is not a PNG",
             path);
  // libpng reports errors by longjmp back to the last setjmp: every object with a destructor is
  // made before the setjmp it may return to, and none is changed after it, so a jump skips no
  // destructor and reads no stale value.
  std::string error;
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &error, png_error_fn, png_warning_fn);
  CSEG_CHECK(png, "label file '{}': libpng cannot start", path);
  png_infop info = png_create_info_struct(png);
  const auto give_up = [&](const std::string& message) {
    png_destroy_read_struct(&png, &info, nullptr);
    throw Error(message);
  };
  png_uint_32 width = 0, height = 0;
  int depth = 0, color = 0;
  if (setjmp(png_jmpbuf(png))) give_up(fmt::format("label file '{}' is corrupt: {}", path, error));
  png_init_io(png, file.get());
  png_set_sig_bytes(png, 8);
  png_read_info(png, info);
  png_get_IHDR(png, info, &width, &height, &depth, &color, nullptr, nullptr, nullptr);
  if ((color != PNG_COLOR_TYPE_PALETTE && color != PNG_COLOR_TYPE_GRAY) || depth > 8)
    give_up(
        fmt::format("label file '{}': expected a palette or 8-bit grayscale PNG of class indices, got colour "
                    "type {} with {} bits",
                    path, color, depth));
  if (width == 0 || height == 0 || int64_t(width) > kMaxImagePixels / int64_t(height))
    give_up(
        fmt::format("label file '{}' claims {} x {} pixels; cseg reads at most {} pixels per image (corrupt "
                    "or crafted file?)",
                    path, width, height, kMaxImagePixels));
  if (depth < 8) png_set_packing(png);  // 1/2/4-bit indices -> one byte each, values kept
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  cv::Mat out(static_cast<int>(height), static_cast<int>(width), CV_8UC1);
  std::vector<png_bytep> rows(height);
  for (png_uint_32 y = 0; y < height; ++y) rows[y] = out.ptr<uint8_t>(static_cast<int>(y));
  if (setjmp(png_jmpbuf(png))) give_up(fmt::format("label file '{}' is corrupt: {}", path, error));
  png_read_image(png, rows.data());
  png_read_end(png, nullptr);
  png_destroy_read_struct(&png, &info, nullptr);
  return out;
}

Palette voc_palette() {
  Palette p(256);
  for (int i = 0; i < 256; ++i) {
    int r = 0, g = 0, b = 0, c = i;
    for (int j = 0; j < 8; ++j) {
      r |= ((c >> 0) & 1) << (7 - j);
      g |= ((c >> 1) & 1) << (7 - j);
      b |= ((c >> 2) & 1) << (7 - j);
      c >>= 3;
    }
    p[i] = {static_cast<uint8_t>(r), static_cast<uint8_t>(g), static_cast<uint8_t>(b)};
  }
  return p;
}

namespace {
std::string temp_name(const std::string& path) { return core::temp_path_for(path); }
}  // namespace

void write_label_png(const std::string& path, const cv::Mat& labels, const Palette& palette) {
  CSEG_CHECK(labels.type() == CV_8UC1 && labels.isContinuous(),
             "write_label_png('{}'): expected a continuous 8-bit label map", path);
  CSEG_CHECK(palette.size() == 256, "write_label_png('{}'): the palette needs 256 entries", path);
  const std::string tmp = temp_name(path);
  FilePtr file(std::fopen(tmp.c_str(), "wb"));
  CSEG_CHECK(file, "cannot write '{}'", tmp);
  std::string error;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &error, png_error_fn, png_warning_fn);
  png_infop info = png_create_info_struct(png);
  std::vector<png_color> plte(256);
  for (int i = 0; i < 256; ++i) plte[i] = {palette[i][0], palette[i][1], palette[i][2]};
  std::vector<png_bytep> rows(labels.rows);
  for (int y = 0; y < labels.rows; ++y) rows[y] = const_cast<png_bytep>(labels.ptr<uint8_t>(y));
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    fail("cannot write label PNG '{}': {}", path, error);
  }
  png_init_io(png, file.get());
  png_set_IHDR(png, info, labels.cols, labels.rows, 8, PNG_COLOR_TYPE_PALETTE, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_set_PLTE(png, info, plte.data(), 256);
  png_write_info(png, info);
  png_write_image(png, rows.data());
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  file.reset();
  fs::rename(tmp, path);
}

namespace {
// Checked and atomic: a full disk is an error naming the file, which keeps its old content.
void write_bytes_atomically(const std::string& path, const void* data, size_t size) {
  core::write_text_atomic(path, std::string(static_cast<const char*>(data), size));
}
}  // namespace

void write_jpeg(const std::string& path, const cv::Mat& rgb, int quality) {
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  const auto bytes = encode_jpeg(bgr, quality);
  write_bytes_atomically(path, bytes.data(), bytes.size());
}

cv::Mat read_depth_png(const std::string& path, double units_per_metre) {
  cv::Mat raw = read_image_file(path, Decode::unchanged, "depth file");
  CSEG_CHECK(raw.type() == CV_16UC1, "depth file '{}' is not a 1-channel 16-bit PNG ({} channels, {} bytes each)", path,
             raw.channels(), raw.elemSize1());
  cv::Mat metres;
  raw.convertTo(metres, CV_32F, 1.0 / units_per_metre);
  return metres;
}

void write_depth_png(const std::string& path, const cv::Mat& metres, double units_per_metre) {
  CSEG_CHECK(metres.type() == CV_32FC1, "write_depth_png '{}': expected a 1-channel float map", path);
  cv::Mat raw;
  metres.convertTo(raw, CV_16U, units_per_metre);  // saturates to [0, 65535]
  const auto bytes = encode_png(raw);
  write_bytes_atomically(path, bytes.data(), bytes.size());
}

void write_image(const std::string& path, const cv::Mat& image, int jpeg_quality) {
  std::string ext = fs::path(path).extension().string();
  for (auto& c : ext) c = char(std::tolower(static_cast<unsigned char>(c)));
  CSEG_CHECK(ext == ".png" || ext == ".jpg" || ext == ".jpeg",
             "write_image '{}': the extension must be .png, .jpg or .jpeg", path);
  const auto bytes = ext == ".png" ? encode_png(image) : encode_jpeg(image, jpeg_quality);
  write_bytes_atomically(path, bytes.data(), bytes.size());
}

namespace {
constexpr float kFloMagic = 202021.25f;
}

cv::Mat read_flo(const std::string& path) {
  FilePtr file(std::fopen(path.c_str(), "rb"));
  CSEG_CHECK(file, "flow file '{}' does not exist or cannot be read", path);
  float magic = 0;
  int32_t size[2] = {0, 0};
  CSEG_CHECK(std::fread(&magic, 4, 1, file.get()) == 1 && magic == kFloMagic,
             "flow file '{}' is not a .flo file (expected the magic number 202021.25)", path);
  CSEG_CHECK(
      std::fread(size, 4, 2, file.get()) == 2 && size[0] > 0 && size[1] > 0 && size[0] <= kMaxImagePixels / size[1],
      "flow file '{}': bad size {} x {} (at most {} pixels)", path, size[0], size[1], kMaxImagePixels);
  // The claimed size against the bytes present, before allocating for it.
  const size_t n = size_t(size[0]) * size_t(size[1]) * 2;
  const long header_end = std::ftell(file.get());
  CSEG_CHECK(header_end >= 0 && std::fseek(file.get(), 0, SEEK_END) == 0, "flow file '{}' cannot be read", path);
  const long file_end = std::ftell(file.get());
  CSEG_CHECK(file_end >= header_end && size_t(file_end - header_end) >= n * 4 &&
                 std::fseek(file.get(), header_end, SEEK_SET) == 0,
             "flow file '{}' is truncated ({} x {} expected)", path, size[0], size[1]);
  cv::Mat flow(size[1], size[0], CV_32FC2);
  CSEG_CHECK(std::fread(flow.ptr<float>(), 4, n, file.get()) == n, "flow file '{}' is truncated ({} x {} expected)",
             path, size[0], size[1]);
  return flow;
}

void write_flo(const std::string& path, const cv::Mat& flow) {
  CSEG_CHECK(flow.type() == CV_32FC2 && flow.isContinuous(),
             "write_flo '{}': expected a continuous 2-channel float map", path);
  std::vector<char> bytes(12 + flow.total() * 8);
  const int32_t size[2] = {flow.cols, flow.rows};
  std::memcpy(bytes.data(), &kFloMagic, 4);
  std::memcpy(bytes.data() + 4, size, 8);
  std::memcpy(bytes.data() + 12, flow.ptr<float>(), flow.total() * 8);
  write_bytes_atomically(path, bytes.data(), bytes.size());
}

}  // namespace cseg::data
