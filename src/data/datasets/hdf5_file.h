#pragma once
/// A small read-only view of an HDF5 file (NYUv2's MATLAB v7.3 .mat, ML-Hypersim's frames), kept
/// out of public headers. libhdf5 runs in a helper process (hdf5_file.cpp says why): a file that
/// crashes it, or keeps it busy longer than CSEG_HDF5_TIMEOUT_S seconds (120 by default), is an
/// error naming the file. Debian's serial libhdf5 is not thread-safe and there is one helper:
/// every call takes one process-wide lock, so loader threads may share files.
#include <cstdint>
#include <string>
#include <vector>

namespace cseg::data::hdf5 {

class File {
 public:
  /// Opens `path` read-only; throws naming it when it is missing or not HDF5.
  explicit File(const std::string& path);
  ~File();
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  const std::string& path() const { return path_; }
  /// The extent of dataset `name`; throws naming the file and the dataset when it is absent.
  std::vector<uint64_t> dims(const std::string& name) const;
  /// The whole dataset converted by HDF5 to T (uint8, uint16, int16, int32, float, double).
  template <typename T>
  std::vector<T> read(const std::string& name) const;
  /// Entry `index` along the first dimension (all the others whole), converted to T.
  template <typename T>
  std::vector<T> read_slab(const std::string& name, uint64_t index) const;

 private:
  /// This file's handle in the current helper, opened again when the helper was restarted.
  uint64_t handle() const;
  std::string path_;
  mutable uint64_t handle_ = 0;      ///< 0: not open
  mutable uint64_t generation_ = 0;  ///< the helper that handle_ belongs to
};

}  // namespace cseg::data::hdf5
