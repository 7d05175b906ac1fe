#include "matlab_v5.h"

#include <zlib.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "cseg/core/error.h"

// cseg reads MATLAB v5 files itself rather than through libmatio: libmatio trusts the sizes a
// file declares (a crafted 170-byte file made it fill 4 GB), and the variables cseg needs (real
// numeric arrays) take a small reader whose every size is checked against the bytes present.
//
// The format (MathWorks, "MAT-File Format", level 5): a 128-byte header ending in the version
// 0x0100 and the endian mark "IM" (little-endian), then data elements. An element is a tag
// (uint32 type, uint32 byte count) and its data padded to 8 bytes, or a "small" element whose
// first word holds the byte count in its upper half and whose 4 data bytes follow. A variable is
// a miMATRIX element (or one inside a zlib-compressed miCOMPRESSED element) whose sub-elements
// are the array flags (class, complex bit), the dimensions, the name and the real part; the real
// part may be stored in a narrower type than the class (MATLAB stores small doubles as uint8).

namespace cseg::data::matlab {

namespace {

enum : uint32_t {
  miINT8 = 1,
  miUINT8 = 2,
  miINT16 = 3,
  miUINT16 = 4,
  miINT32 = 5,
  miUINT32 = 6,
  miSINGLE = 7,
  miDOUBLE = 9,
  miINT64 = 12,
  miUINT64 = 13,
  miMATRIX = 14,
  miCOMPRESSED = 15
};
constexpr uint32_t kDoubleClass = 6, kLastNumericClass = 15;  // mxDOUBLE .. mxUINT64
/// The most bytes one compressed variable may inflate to (NYUv2's metadata: a few kilobytes).
constexpr size_t kMaxInflated = size_t(64) << 20;

uint32_t u32(const unsigned char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

/// One data element inside `bytes`: its type and data, and where the next one starts.
struct Element {
  uint32_t type = 0;
  const unsigned char* data = nullptr;
  size_t size = 0;
  size_t next = 0;
};

/// The element at `at`, or an error naming `path` when its declared size passes the bytes left.
Element element_at(const std::vector<unsigned char>& bytes, size_t at, const std::string& path) {
  Element e;
  CSEG_CHECK(bytes.size() >= 8 && at <= bytes.size() - 8,
             "MATLAB file '{}' is truncated (a data element's tag at byte {})", path, at);
  const uint32_t first = u32(&bytes[at]);
  if (first >> 16) {  // small element: size in the upper half, data in the next 4 bytes
    e.type = first & 0xffff;
    e.size = first >> 16;
    CSEG_CHECK(e.size <= 4, "MATLAB file '{}' is corrupt (a small data element of {} bytes at byte {})", path, e.size,
               at);
    e.data = &bytes[at + 4];
    e.next = at + 8;
    return e;
  }
  e.type = first;
  e.size = u32(&bytes[at + 4]);
  CSEG_CHECK(e.size <= bytes.size() - at - 8,
             "MATLAB file '{}' is corrupt: a data element at byte {} declares {} bytes, {} remain", path, at, e.size,
             bytes.size() - at - 8);
  e.data = &bytes[at + 8];
  // Elements are padded to 8 bytes, except compressed ones (their count is exact).
  const size_t padded = e.type == miCOMPRESSED ? e.size : (e.size + 7) / 8 * 8;
  e.next = at + 8 + std::min(padded, bytes.size() - at - 8);
  return e;
}

std::vector<unsigned char> inflate_element(const Element& e, const std::string& path) {
  std::vector<unsigned char> out;
  z_stream z{};
  CSEG_CHECK(inflateInit(&z) == Z_OK, "MATLAB file '{}': zlib cannot start", path);
  z.next_in = const_cast<unsigned char*>(e.data);
  z.avail_in = static_cast<uInt>(e.size);
  int status = Z_OK;
  unsigned char chunk[1 << 14];
  while (status == Z_OK) {
    z.next_out = chunk;
    z.avail_out = sizeof chunk;
    status = inflate(&z, Z_NO_FLUSH);
    const size_t got = sizeof chunk - z.avail_out;
    if (out.size() + got > kMaxInflated) {
      inflateEnd(&z);
      fail("MATLAB file '{}': a compressed variable inflates to more than {} bytes", path, kMaxInflated);
    }
    out.insert(out.end(), chunk, chunk + got);
  }
  inflateEnd(&z);
  CSEG_CHECK(status == Z_STREAM_END,
             "MATLAB file '{}' is corrupt (a compressed variable does not inflate: zlib status {})", path, status);
  return out;
}

/// Bytes per value of a numeric storage type; 0 for any other type.
size_t stored_size(uint32_t type) {
  switch (type) {
    case miINT8:
    case miUINT8: return 1;
    case miINT16:
    case miUINT16: return 2;
    case miINT32:
    case miUINT32:
    case miSINGLE: return 4;
    case miDOUBLE:
    case miINT64:
    case miUINT64: return 8;
    default: return 0;
  }
}

/// The value of type T stored (little-endian, unaligned) at p, as a double.
template <typename T>
double load(const unsigned char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return double(v);
}

double stored_value(uint32_t type, const unsigned char* p) {
  switch (type) {
    case miINT8: return load<int8_t>(p);
    case miUINT8: return load<uint8_t>(p);
    case miINT16: return load<int16_t>(p);
    case miUINT16: return load<uint16_t>(p);
    case miINT32: return load<int32_t>(p);
    case miUINT32: return load<uint32_t>(p);
    case miSINGLE: return load<float>(p);
    case miINT64: return load<int64_t>(p);
    case miUINT64: return load<uint64_t>(p);
    default: return load<double>(p);  // miDOUBLE (stored_size admits no other type)
  }
}

/// The variable in a miMATRIX element's data if its name is `variable`; nothing when it is another
/// variable; an error when it is `variable` but not a real numeric array or its sizes disagree.
bool read_matrix(const Element& matrix, const std::string& variable, const std::string& path,
                 std::vector<double>& out) {
  const std::vector<unsigned char> body(matrix.data, matrix.data + matrix.size);
  if (body.empty()) return false;  // an empty matrix element (MATLAB writes these for [])
  const Element flags = element_at(body, 0, path);
  const Element dims = element_at(body, flags.next, path);
  const Element name = element_at(body, dims.next, path);
  if (std::string(reinterpret_cast<const char*>(name.data), name.size) != variable) return false;
  CSEG_CHECK(flags.type == miUINT32 && flags.size >= 8 && dims.type == miINT32 && dims.size % 4 == 0,
             "MATLAB file '{}': variable '{}' has malformed array flags or dimensions", path, variable);
  const uint32_t array_class = flags.data[0], complex = flags.data[1] & 0x08;
  CSEG_CHECK(array_class >= kDoubleClass && array_class <= kLastNumericClass && !complex,
             "MATLAB file '{}': variable '{}' is not a real numeric array", path, variable);
  size_t count = 1;
  for (size_t d = 0; d < dims.size / 4; ++d) {
    int32_t extent;
    std::memcpy(&extent, dims.data + 4 * d, 4);
    CSEG_CHECK(extent >= 0 && (extent == 0 || count <= SIZE_MAX / size_t(extent)),
               "MATLAB file '{}': variable '{}' has a bad dimension {}", path, variable, extent);
    count *= size_t(extent);
  }
  const Element real = element_at(body, name.next, path);
  const size_t each = stored_size(real.type);
  CSEG_CHECK(each > 0 && real.size == count * each,
             "MATLAB file '{}': variable '{}' declares {} values but holds {} bytes of type {}", path, variable, count,
             real.size, real.type);
  out.resize(count);
  for (size_t i = 0; i < count; ++i) out[i] = stored_value(real.type, real.data + i * each);
  return true;
}

}  // namespace

std::vector<double> read_numbers(const std::string& path, const std::string& variable) {
  CSEG_CHECK(std::filesystem::exists(path), "MATLAB file '{}' does not exist", path);
  std::ifstream in(path, std::ios::binary);
  CSEG_CHECK(in, "MATLAB file '{}' cannot be opened", path);
  const std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), {});
  CSEG_CHECK(bytes.size() >= 128 && bytes[124] == 0x00 && bytes[125] == 0x01,
             "'{}' is not a MATLAB v5 .mat file (no v5 header)", path);
  CSEG_CHECK(bytes[126] == 'I' && bytes[127] == 'M', "MATLAB file '{}' is big-endian, which cseg does not read", path);
  std::vector<double> out;
  for (size_t at = 128; at < bytes.size();) {
    const Element e = element_at(bytes, at, path);
    if (e.type == miMATRIX && read_matrix(e, variable, path, out)) return out;
    if (e.type == miCOMPRESSED) {
      const auto inflated = inflate_element(e, path);
      const Element inner = element_at(inflated, 0, path);
      if (inner.type == miMATRIX && read_matrix(inner, variable, path, out)) return out;
    }
    at = e.next;
  }
  fail("MATLAB file '{}' has no variable '{}'", path, variable);
}

}  // namespace cseg::data::matlab
