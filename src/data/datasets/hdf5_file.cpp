#include "hdf5_file.h"

#include <hdf5.h>

#include <filesystem>
#include <mutex>

#include "cseg/core/error.h"

namespace cseg::data::hdf5 {

namespace {
std::mutex& library_lock() {
  static std::mutex m;
  return m;
}

template <typename T>
hid_t native_type();
template <>
hid_t native_type<uint8_t>() {
  return H5T_NATIVE_UINT8;
}
template <>
hid_t native_type<uint16_t>() {
  return H5T_NATIVE_UINT16;
}
template <>
hid_t native_type<int16_t>() {
  return H5T_NATIVE_INT16;
}
template <>
hid_t native_type<int32_t>() {
  return H5T_NATIVE_INT32;
}
template <>
hid_t native_type<float>() {
  return H5T_NATIVE_FLOAT;
}
template <>
hid_t native_type<double>() {
  return H5T_NATIVE_DOUBLE;
}

/// Closes an HDF5 handle at scope exit.
struct Handle {
  hid_t id;
  herr_t (*close)(hid_t);
  ~Handle() {
    if (id >= 0) close(id);
  }
};

/// The most elements one read may return (a dataset's dims come from the file: a crafted one may
/// claim 2^64). 2^28 holds a 3 x 8192 x 8192 frame; NYUv2 is read one frame at a time.
constexpr uint64_t kMaxReadElements = uint64_t(1) << 28;

/// The product of `dims` from index `first` on, checked against kMaxReadElements.
size_t checked_count(const std::vector<uint64_t>& dims, size_t first, const std::string& path,
                     const std::string& name) {
  uint64_t n = 1;
  for (size_t i = first; i < dims.size(); ++i)
    CSEG_CHECK(dims[i] == 0 || n <= kMaxReadElements / dims[i],
               "HDF5 file '{}': dataset '{}' claims more than {} elements in one read (corrupt or crafted file?)", path,
               name, kMaxReadElements);
  for (size_t i = first; i < dims.size(); ++i) n *= dims[i];
  CSEG_CHECK(n <= kMaxReadElements,
             "HDF5 file '{}': dataset '{}' claims more than {} elements in one read (corrupt or crafted file?)", path,
             name, kMaxReadElements);
  return size_t(n);
}

std::vector<uint64_t> extent(hid_t space) {
  const int rank = H5Sget_simple_extent_ndims(space);
  std::vector<hsize_t> d(rank > 0 ? rank : 0);
  if (rank > 0) H5Sget_simple_extent_dims(space, d.data(), nullptr);
  return {d.begin(), d.end()};
}
}  // namespace

File::File(const std::string& path) : path_(path) {
  std::lock_guard<std::mutex> lock(library_lock());
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // errors become cseg's messages, not HDF5's stack dumps
  CSEG_CHECK(std::filesystem::exists(path), "HDF5 file '{}' does not exist", path);
  CSEG_CHECK(H5Fis_hdf5(path.c_str()) > 0, "'{}' is not an HDF5 file (a MATLAB v7.3 .mat or an .hdf5 file expected)",
             path);
  id_ = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  CSEG_CHECK(id_ >= 0, "cannot open HDF5 file '{}'", path);
}

File::~File() {
  std::lock_guard<std::mutex> lock(library_lock());
  if (id_ >= 0) H5Fclose(id_);
}

std::vector<uint64_t> File::dims(const std::string& name) const {
  std::lock_guard<std::mutex> lock(library_lock());
  CSEG_CHECK(H5Lexists(id_, name.c_str(), H5P_DEFAULT) > 0, "HDF5 file '{}' has no dataset '{}'", path_, name);
  Handle set{H5Dopen2(id_, name.c_str(), H5P_DEFAULT), H5Dclose};
  CSEG_CHECK(set.id >= 0, "HDF5 file '{}': '{}' is not a dataset", path_, name);
  Handle space{H5Dget_space(set.id), H5Sclose};
  return extent(space.id);
}

template <typename T>
std::vector<T> File::read(const std::string& name) const {
  const auto d = dims(name);
  const size_t n = checked_count(d, 0, path_, name);
  std::lock_guard<std::mutex> lock(library_lock());
  std::vector<T> out(n);
  Handle set{H5Dopen2(id_, name.c_str(), H5P_DEFAULT), H5Dclose};
  CSEG_CHECK(set.id >= 0 && H5Dread(set.id, native_type<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) >= 0,
             "HDF5 file '{}': dataset '{}' cannot be read as numbers (corrupt, or not a numeric dataset)", path_, name);
  return out;
}

template <typename T>
std::vector<T> File::read_slab(const std::string& name, uint64_t index) const {
  const auto d = dims(name);
  CSEG_CHECK(!d.empty() && index < d[0], "HDF5 file '{}': dataset '{}' has {} entries, asked for entry {}", path_, name,
             d.empty() ? 0 : d[0], index);
  const size_t n = checked_count(d, 1, path_, name);
  std::lock_guard<std::mutex> lock(library_lock());
  std::vector<hsize_t> start(d.size(), 0), count(d.begin(), d.end());
  start[0] = index;
  count[0] = 1;
  std::vector<T> out(n);
  Handle set{H5Dopen2(id_, name.c_str(), H5P_DEFAULT), H5Dclose};
  Handle file_space{H5Dget_space(set.id), H5Sclose};
  Handle memory_space{H5Screate_simple(static_cast<int>(count.size()), count.data(), nullptr), H5Sclose};
  CSEG_CHECK(
      set.id >= 0 && file_space.id >= 0 && memory_space.id >= 0 &&
          H5Sselect_hyperslab(file_space.id, H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr) >= 0 &&
          H5Dread(set.id, native_type<T>(), memory_space.id, file_space.id, H5P_DEFAULT, out.data()) >= 0,
      "HDF5 file '{}': entry {} of dataset '{}' cannot be read (corrupt or truncated file)", path_, index, name);
  return out;
}

#define CSEG_HDF5_TYPES(T)                                         \
  template std::vector<T> File::read<T>(const std::string&) const; \
  template std::vector<T> File::read_slab<T>(const std::string&, uint64_t) const;
CSEG_HDF5_TYPES(uint8_t)
CSEG_HDF5_TYPES(uint16_t)
CSEG_HDF5_TYPES(int16_t)
CSEG_HDF5_TYPES(int32_t)
CSEG_HDF5_TYPES(float)
CSEG_HDF5_TYPES(double)
#undef CSEG_HDF5_TYPES

}  // namespace cseg::data::hdf5
