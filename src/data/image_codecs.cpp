#include "cseg/data/image_codecs.h"

// clang-format off
#include <cstdio>  // jpeglib.h needs FILE and size_t declared before it
#include <jpeglib.h>
// clang-format on
#include <png.h>

#include <array>
#include <csetjmp>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "cseg/core/error.h"

namespace cseg::data {

namespace {

uint32_t big_endian(const unsigned char* p, int n) {
  uint32_t v = 0;
  for (int k = 0; k < n; ++k) v = (v << 8) | p[k];
  return v;
}

uint32_t little_endian(const unsigned char* p, int n) {
  uint32_t v = 0;
  for (int k = n - 1; k >= 0; --k) v = (v << 8) | p[k];
  return v;
}

// ---- PNG (libpng) ----------------------------------------------------------------------------
// libpng reports errors by longjmp back to the last setjmp. Every object with a destructor is made
// before the setjmp it may return to and not changed after it (a second setjmp follows each
// change), so a jump skips no destructor and reads no stale value; what the callbacks change
// lives on the heap.

[[noreturn]] void png_error_fn(png_structp png, png_const_charp msg) {
  *static_cast<std::string*>(png_get_error_ptr(png)) = msg;
  png_longjmp(png, 1);
}
void png_warning_fn(png_structp, png_const_charp) {}

struct MemoryReader {
  const unsigned char* data;
  size_t size, at;
};

void png_read_memory(png_structp png, png_bytep out, png_size_t n) {
  auto* in = static_cast<MemoryReader*>(png_get_io_ptr(png));
  if (n > in->size - in->at) png_error(png, "the file ends early (truncated)");
  std::memcpy(out, in->data + in->at, n);
  in->at += n;
}

void png_write_memory(png_structp png, png_bytep data, png_size_t n) {
  auto* out = static_cast<std::vector<unsigned char>*>(png_get_io_ptr(png));
  out->insert(out->end(), data, data + n);
}
void png_flush_memory(png_structp) {}

cv::Mat decode_png(const std::vector<unsigned char>& bytes, Decode mode, const std::string& name) {
  std::string error;
  auto in = std::make_unique<MemoryReader>(MemoryReader{bytes.data(), bytes.size(), 0});
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &error, png_error_fn, png_warning_fn);
  CSEG_CHECK(png, "{}: libpng cannot start", name);
  png_infop info = png_create_info_struct(png);
  cv::Mat out;
  std::vector<png_bytep> rows;
  const auto give_up = [&] {
    png_destroy_read_struct(&png, &info, nullptr);
    fail("{} cannot be decoded (corrupt PNG: {})", name, error);
  };
  if (setjmp(png_jmpbuf(png))) give_up();
  png_set_read_fn(png, in.get(), png_read_memory);
  png_read_info(png, info);
  png_uint_32 width = 0, height = 0;
  int depth = 0, colour = 0;
  png_get_IHDR(png, info, &width, &height, &depth, &colour, nullptr, nullptr, nullptr);
  const bool gray = (colour & PNG_COLOR_MASK_COLOR) == 0;
  int channels = 3, cv_depth = CV_8U;
  if (mode == Decode::colour) {  // 8-bit BGR: alpha and the low byte of 16-bit samples dropped
    if (depth == 16) png_set_strip_16(png);
    png_set_strip_alpha(png);  // also what palette_to_rgb makes of a palette's transparency
  } else {
    const bool alpha = (colour & PNG_COLOR_MASK_ALPHA) ||
                       (colour == PNG_COLOR_TYPE_PALETTE && png_get_valid(png, info, PNG_INFO_tRNS));
    channels = colour == PNG_COLOR_TYPE_GRAY ? 1 : alpha ? 4 : 3;
    if (depth == 16) {
      cv_depth = CV_16U;
      const uint16_t one = 1;
      if (*reinterpret_cast<const uint8_t*>(&one) == 1) png_set_swap(png);  // PNG is big-endian
    }
  }
  if (colour == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (gray && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (gray && channels > 1) png_set_gray_to_rgb(png);
  if (!gray) png_set_bgr(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  const size_t row_bytes = size_t(width) * size_t(channels) * (cv_depth == CV_16U ? 2 : 1);
  if (png_get_rowbytes(png, info) != row_bytes) {
    error = fmt::format("colour type {} with {} bits gives an unexpected row layout", colour, depth);
    give_up();
  }
  out.create(int(height), int(width), CV_MAKETYPE(cv_depth, channels));
  rows.resize(height);
  for (png_uint_32 y = 0; y < height; ++y) rows[y] = out.ptr<png_byte>(int(y));
  if (setjmp(png_jmpbuf(png))) give_up();
  png_read_image(png, rows.data());
  png_read_end(png, nullptr);
  png_destroy_read_struct(&png, &info, nullptr);
  return out;
}

// ---- JPEG (libjpeg / libjpeg-turbo) ------------------------------------------------------------
// Same longjmp discipline as PNG's.

struct JpegError {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

[[noreturn]] void jpeg_error_exit(j_common_ptr cinfo) {
  auto* e = reinterpret_cast<JpegError*>(cinfo->err);
  cinfo->err->format_message(cinfo, e->message);
  std::longjmp(e->jump, 1);
}
void jpeg_no_message(j_common_ptr, int) {}  // warnings (e.g. a short last scan) decode on, as OpenCV

/// The EXIF orientation (1-8) of a JPEG's APP1 segment; 1 (as stored) when there is none.
int exif_orientation(jpeg_saved_marker_ptr marker) {
  for (; marker; marker = marker->next) {
    if (marker->marker != JPEG_APP0 + 1 || marker->data_length < 14 || std::memcmp(marker->data, "Exif\0\0", 6) != 0)
      continue;
    const unsigned char* tiff = marker->data + 6;  // TIFF header: byte order, 42, first IFD's offset
    const size_t n = marker->data_length - 6;
    const bool little = tiff[0] == 'I' && tiff[1] == 'I';
    if (!little && !(tiff[0] == 'M' && tiff[1] == 'M')) return 1;
    const auto read = [&](size_t at, int bytes) {
      return little ? little_endian(tiff + at, bytes) : big_endian(tiff + at, bytes);
    };
    const size_t ifd = read(4, 4);
    if (ifd > n || n - ifd < 2) return 1;
    const size_t entries = read(ifd, 2);
    for (size_t i = 0; i < entries; ++i) {
      const size_t e = ifd + 2 + 12 * i;  // tag, type, count, value
      if (e > n || n - e < 12) break;
      if (read(e, 2) == 0x0112) {
        const uint32_t v = read(e + 8, 2);
        return v >= 1 && v <= 8 ? int(v) : 1;
      }
    }
    return 1;
  }
  return 1;
}

/// Turns a stored image upright for its EXIF orientation (the TIFF convention's eight cases).
void apply_orientation(cv::Mat& img, int orientation) {
  if (orientation >= 5) cv::transpose(img, img);
  switch (orientation) {
    case 2:
    case 6: cv::flip(img, img, 1); break;  // mirror left-right
    case 3:
    case 7: cv::flip(img, img, -1); break;  // both
    case 4:
    case 8: cv::flip(img, img, 0); break;  // mirror top-bottom
    default: break;
  }
}

cv::Mat decode_jpeg(const std::vector<unsigned char>& bytes, Decode mode, const std::string& name) {
  auto cinfo = std::make_unique<jpeg_decompress_struct>();
  auto err = std::make_unique<JpegError>();
  cinfo->err = jpeg_std_error(&err->pub);
  err->pub.error_exit = jpeg_error_exit;
  err->pub.emit_message = jpeg_no_message;
  jpeg_create_decompress(cinfo.get());
  cv::Mat out;
  const auto give_up = [&](const std::string& why) {
    jpeg_destroy_decompress(cinfo.get());
    fail("{} cannot be decoded ({})", name, why);
  };
  if (setjmp(err->jump)) give_up(fmt::format("corrupt JPEG: {}", err->message));
  jpeg_mem_src(cinfo.get(), bytes.data(), static_cast<unsigned long>(bytes.size()));
  if (mode == Decode::colour) jpeg_save_markers(cinfo.get(), JPEG_APP0 + 1, 0xffff);
  jpeg_read_header(cinfo.get(), TRUE);
  if (cinfo->num_components != 1 && cinfo->num_components != 3)
    give_up(fmt::format("a JPEG with {} colour components (CMYK?); cseg reads gray and colour JPEGs",
                        cinfo->num_components));
  const bool gray = mode == Decode::unchanged && cinfo->num_components == 1;
  cinfo->out_color_space = gray ? JCS_GRAYSCALE : JCS_EXT_BGR;
  jpeg_start_decompress(cinfo.get());
  out.create(int(cinfo->output_height), int(cinfo->output_width), gray ? CV_8UC1 : CV_8UC3);
  if (setjmp(err->jump)) give_up(fmt::format("corrupt JPEG: {}", err->message));
  while (cinfo->output_scanline < cinfo->output_height) {
    JSAMPROW row = out.ptr<JSAMPLE>(int(cinfo->output_scanline));
    jpeg_read_scanlines(cinfo.get(), &row, 1);
  }
  const int orientation = mode == Decode::colour ? exif_orientation(cinfo->marker_list) : 1;
  jpeg_finish_decompress(cinfo.get());
  jpeg_destroy_decompress(cinfo.get());
  apply_orientation(out, orientation);
  return out;
}

// ---- BMP -----------------------------------------------------------------------------------------

cv::Mat decode_bmp(const std::vector<unsigned char>& b, const std::string& name) {
  const size_t n = b.size();
  CSEG_CHECK(n >= 54, "{} cannot be decoded (BMP header truncated)", name);
  const auto u32 = [&](size_t at) { return little_endian(&b[at], 4); };
  const auto u16 = [&](size_t at) { return little_endian(&b[at], 2); };
  const size_t pixels_at = u32(10), info_size = u32(14);
  const int64_t width = int32_t(u32(18)), signed_height = int32_t(u32(22));
  const int bits = int(u16(28));
  const uint32_t compression = u32(30);
  CSEG_CHECK(info_size >= 40 && 14 + info_size <= n, "{} cannot be decoded (BMP info header of {} bytes)", name,
             info_size);
  CSEG_CHECK(bits == 8 || bits == 24 || bits == 32,
             "{}: a {}-bit BMP; cseg reads uncompressed 8-, 24- and 32-bit BMP files", name, bits);
  bool standard_masks = compression == 0;
  if (compression == 3 && bits == 32) {  // BI_BITFIELDS: fine when the masks are the usual BGRX ones
    const size_t masks = 54;             // after a 40-byte header, or the same place inside a V4/V5 one
    standard_masks =
        masks + 12 <= n && u32(masks) == 0x00ff0000u && u32(masks + 4) == 0x0000ff00u && u32(masks + 8) == 0x000000ffu;
  }
  CSEG_CHECK(standard_masks,
             "{}: a compressed or bit-field BMP (compression {}); cseg reads uncompressed 8-, 24- and 32-bit BMP "
             "files",
             name, compression);
  const int64_t height = signed_height < 0 ? -signed_height : signed_height;  // negative: top-down rows
  CSEG_CHECK(width > 0 && height > 0, "{} cannot be decoded (BMP size {} x {})", name, width, signed_height);
  const size_t stride = size_t((width * bits + 31) / 32) * 4;
  CSEG_CHECK(pixels_at <= n && size_t(height) <= (n - pixels_at) / stride,
             "{} cannot be decoded (BMP pixel data truncated: {} x {} at {} bits)", name, width, height, bits);
  std::vector<std::array<uint8_t, 3>> palette;
  if (bits == 8) {
    const size_t used = u32(46) ? u32(46) : 256, at = 14 + info_size;
    CSEG_CHECK(used <= 256 && at + 4 * used <= pixels_at,
               "{} cannot be decoded (BMP palette of {} colours does not fit)", name, used);
    for (size_t i = 0; i < used; ++i) palette.push_back({b[at + 4 * i], b[at + 4 * i + 1], b[at + 4 * i + 2]});
  }
  cv::Mat out(int(height), int(width), CV_8UC3);
  for (int64_t y = 0; y < height; ++y) {
    const unsigned char* src = &b[pixels_at + size_t(signed_height < 0 ? y : height - 1 - y) * stride];
    auto* dst = out.ptr<uint8_t>(int(y));
    for (int64_t x = 0; x < width; ++x, dst += 3) {
      if (bits == 8) {
        CSEG_CHECK(src[x] < palette.size(), "{} cannot be decoded (BMP colour index {} beyond its {} colours)", name,
                   int(src[x]), palette.size());
        std::memcpy(dst, palette[src[x]].data(), 3);
      } else {
        std::memcpy(dst, src + x * (bits / 8), 3);  // stored B, G, R (, X)
      }
    }
  }
  return out;
}

}  // namespace

ImageHeader sniff_image(const std::vector<unsigned char>& b) {
  ImageHeader h;
  const size_t n = b.size();
  if (n >= 8 && std::memcmp(b.data(), "\x89PNG\r\n\x1a\n", 8) == 0) {
    h.format = "PNG";
    if (n >= 24 && std::memcmp(&b[12], "IHDR", 4) == 0) {
      h.width = big_endian(&b[16], 4);
      h.height = big_endian(&b[20], 4);
    }
  } else if (n >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff) {
    h.format = "JPEG";
    // Walk the marker segments to the frame header (SOFn); stop at the scan (SOS) or the end.
    size_t at = 2;
    while (at + 4 <= n) {
      if (b[at] != 0xff) break;
      const unsigned char marker = b[at + 1];
      if (marker == 0xff) {  // fill byte
        ++at;
        continue;
      }
      if (marker == 0xd8 || marker == 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {  // no length
        at += 2;
        continue;
      }
      const size_t length = big_endian(&b[at + 2], 2);
      const bool frame = marker >= 0xc0 && marker <= 0xcf && marker != 0xc4 && marker != 0xc8 && marker != 0xcc;
      if (frame && length >= 7 && at + 9 <= n) {
        h.height = big_endian(&b[at + 5], 2);
        h.width = big_endian(&b[at + 7], 2);
        break;
      }
      if (marker == 0xda || marker == 0xd9 || length < 2) break;
      at += 2 + length;
    }
  } else if (n >= 2 && b[0] == 'B' && b[1] == 'M') {
    h.format = "BMP";
    if (n >= 26) {
      const int64_t w = int32_t(little_endian(&b[18], 4)), hh = int32_t(little_endian(&b[22], 4));
      h.width = w < 0 ? -w : w;  // height < 0 = top-down rows
      h.height = hh < 0 ? -hh : hh;
    }
  }
  return h;
}

cv::Mat decode_image(const std::vector<unsigned char>& bytes, Decode mode, const std::string& name) {
  const ImageHeader h = sniff_image(bytes);
  CSEG_CHECK(h.format, "{} is not a PNG, JPEG or BMP file", name);
  CSEG_CHECK(h.width >= 0, "{} cannot be decoded (no image size in its {} header: corrupt file)", name, h.format);
  CSEG_CHECK(h.width > 0 && h.height > 0 && h.width <= kMaxImagePixels / h.height,
             "{} claims {} x {} pixels; cseg reads at most {} pixels per image (corrupt or crafted file?)", name,
             h.width, h.height, kMaxImagePixels);
  if (std::strcmp(h.format, "PNG") == 0) return decode_png(bytes, mode, name);
  if (std::strcmp(h.format, "JPEG") == 0) return decode_jpeg(bytes, mode, name);
  return decode_bmp(bytes, name);
}

std::vector<unsigned char> encode_png(const cv::Mat& image) {
  const int channels = image.channels();
  CSEG_CHECK((image.depth() == CV_8U && (channels == 1 || channels == 3 || channels == 4)) ||
                 (image.depth() == CV_16U && channels == 1),
             "encode_png: expected an 8-bit 1-, 3- or 4-channel or a 16-bit 1-channel image, got depth {} with {} "
             "channels",
             image.depth(), channels);
  CSEG_CHECK(!image.empty(), "encode_png: the image is empty");
  auto out = std::make_unique<std::vector<unsigned char>>();
  std::string error;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &error, png_error_fn, png_warning_fn);
  CSEG_CHECK(png, "encode_png: libpng cannot start");
  png_infop info = png_create_info_struct(png);
  std::vector<png_bytep> rows(image.rows);
  for (int y = 0; y < image.rows; ++y) rows[y] = const_cast<png_bytep>(image.ptr<png_byte>(y));
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    fail("encode_png: {}", error);
  }
  png_set_write_fn(png, out.get(), png_write_memory, png_flush_memory);
  const int type = channels == 1 ? PNG_COLOR_TYPE_GRAY : channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_RGB_ALPHA;
  png_set_IHDR(png, info, image.cols, image.rows, image.depth() == CV_16U ? 16 : 8, type, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  // OpenCV's speed-first settings: the data generators write many frames and depth maps.
  png_set_filter(png, PNG_FILTER_TYPE_BASE, PNG_FILTER_SUB);
  png_set_compression_level(png, 1);
  png_set_compression_strategy(png, 3);  // Z_RLE
  png_write_info(png, info);
  if (channels > 1) png_set_bgr(png);
  const uint16_t one = 1;
  if (image.depth() == CV_16U && *reinterpret_cast<const uint8_t*>(&one) == 1) png_set_swap(png);
  png_write_image(png, rows.data());
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return std::move(*out);
}

std::vector<unsigned char> encode_jpeg(const cv::Mat& image, int quality) {
  CSEG_CHECK(image.depth() == CV_8U && (image.channels() == 1 || image.channels() == 3) && !image.empty(),
             "encode_jpeg: expected a non-empty 8-bit gray or BGR image, got depth {} with {} channels", image.depth(),
             image.channels());
  CSEG_CHECK(quality >= 0 && quality <= 100, "encode_jpeg: quality {} is not in 0-100", quality);
  struct Destination {
    unsigned char* data = nullptr;
    unsigned long size = 0;
    ~Destination() { std::free(data); }
  };
  auto dest = std::make_unique<Destination>();
  auto cinfo = std::make_unique<jpeg_compress_struct>();
  auto err = std::make_unique<JpegError>();
  cinfo->err = jpeg_std_error(&err->pub);
  err->pub.error_exit = jpeg_error_exit;
  jpeg_create_compress(cinfo.get());
  if (setjmp(err->jump)) {
    jpeg_destroy_compress(cinfo.get());
    fail("encode_jpeg: {}", err->message);
  }
  jpeg_mem_dest(cinfo.get(), &dest->data, &dest->size);
  cinfo->image_width = JDIMENSION(image.cols);
  cinfo->image_height = JDIMENSION(image.rows);
  cinfo->input_components = image.channels();
  cinfo->in_color_space = image.channels() == 3 ? JCS_EXT_BGR : JCS_GRAYSCALE;
  jpeg_set_defaults(cinfo.get());  // baseline, 4:2:0, JFIF header: what OpenCV writes by default
  jpeg_set_quality(cinfo.get(), quality, TRUE);
  jpeg_start_compress(cinfo.get(), TRUE);
  while (cinfo->next_scanline < cinfo->image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(image.ptr<JSAMPLE>(int(cinfo->next_scanline)));
    jpeg_write_scanlines(cinfo.get(), &row, 1);
  }
  jpeg_finish_compress(cinfo.get());
  jpeg_destroy_compress(cinfo.get());
  return std::vector<unsigned char>(dest->data, dest->data + dest->size);
}

}  // namespace cseg::data
