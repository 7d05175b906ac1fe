#include "hdf5_file.h"

#include <hdf5.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>

#include "cseg/core/error.h"

// libhdf5 parses a file's internal structures (B-trees, heaps, object headers) with few checks:
// Debian 12's 1.10.8 dereferences a null pointer on a 2 KB file the fuzzer made within a minute
// (tests/files/fuzz/hdf5_crashes_libhdf5.h5). cseg cannot validate those structures before
// libhdf5 reads them, so libhdf5 runs in a helper process: forked on first use, it opens files
// and answers requests over a socket, and when a file crashes it (or it stops answering) the
// request becomes an error naming the file while training goes on; the next request starts a new
// helper. The helper never calls into LibTorch and the parent never calls into libhdf5.
namespace cseg::data::hdf5 {

namespace {

/// Debian's serial libhdf5 is not thread-safe and there is one helper: one request at a time.
std::mutex& library_lock() {
  static std::mutex m;
  return m;
}

/// How long the helper may stay silent while answering one request, in milliseconds:
/// CSEG_HDF5_TIMEOUT_S seconds, 120 by default.
int answer_timeout_ms() {
  static const int ms = [] {
    const char* v = std::getenv("CSEG_HDF5_TIMEOUT_S");
    if (!v || !*v) return 120'000;
    char* end = nullptr;
    const long s = std::strtol(v, &end, 10);
    CSEG_CHECK(end && *end == '\0' && s > 0 && s <= 86400,
               "CSEG_HDF5_TIMEOUT_S must be a whole number of seconds from 1 to 86400, got '{}'", v);
    return int(s * 1000);
  }();
  return ms;
}

enum class Op : uint8_t { open = 1, close = 2, dims = 3, read = 4, read_slab = 5 };
enum class Type : uint8_t { u8, u16, i16, i32, f32, f64 };

template <typename T>
Type type_code();
template <>
Type type_code<uint8_t>() {
  return Type::u8;
}
template <>
Type type_code<uint16_t>() {
  return Type::u16;
}
template <>
Type type_code<int16_t>() {
  return Type::i16;
}
template <>
Type type_code<int32_t>() {
  return Type::i32;
}
template <>
Type type_code<float>() {
  return Type::f32;
}
template <>
Type type_code<double>() {
  return Type::f64;
}

struct Request {
  Op op;
  Type type = Type::u8;
  uint64_t handle = 0;
  uint64_t index = 0;
  std::string text;  ///< the path (open) or the dataset's name
};

// ---- Bytes over the socket ------------------------------------------------------------------

/// Writes all of `data`; false when the other side is gone.
bool send_all(int fd, const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t k = ::send(fd, p, n, MSG_NOSIGNAL);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return false;
    p += k;
    n -= size_t(k);
  }
  return true;
}

/// Reads exactly `n` bytes; false on end of stream, an error, or (timeout_ms >= 0) silence for
/// that long, which sets *silent.
bool receive_all(int fd, void* data, size_t n, int timeout_ms, bool* silent = nullptr) {
  char* p = static_cast<char*>(data);
  while (n > 0) {
    if (timeout_ms >= 0) {
      pollfd pfd{fd, POLLIN, 0};
      const int ready = ::poll(&pfd, 1, timeout_ms);
      if (ready < 0 && errno == EINTR) continue;
      if (ready == 0 && silent) *silent = true;
      if (ready <= 0) return false;
    }
    const ssize_t k = ::recv(fd, p, n, 0);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return false;
    p += k;
    n -= size_t(k);
  }
  return true;
}

// ---- The helper's side: libhdf5 itself --------------------------------------------------------

hid_t native_type(Type t) {
  switch (t) {
    case Type::u8: return H5T_NATIVE_UINT8;
    case Type::u16: return H5T_NATIVE_UINT16;
    case Type::i16: return H5T_NATIVE_INT16;
    case Type::i32: return H5T_NATIVE_INT32;
    case Type::f32: return H5T_NATIVE_FLOAT;
    case Type::f64: return H5T_NATIVE_DOUBLE;
  }
  fail("HDF5 helper: unknown element type {}", int(t));
}

size_t type_size(Type t) {
  switch (t) {
    case Type::u8: return 1;
    case Type::u16:
    case Type::i16: return 2;
    case Type::i32:
    case Type::f32: return 4;
    case Type::f64: return 8;
  }
  return 0;
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

/// The helper's open files by handle, with their paths for messages.
struct OpenFiles {
  std::map<uint64_t, std::pair<hid_t, std::string>> files;
  uint64_t next = 1;

  const std::pair<hid_t, std::string>& at(uint64_t handle) const {
    auto it = files.find(handle);
    CSEG_CHECK(it != files.end(), "HDF5 helper: no open file with handle {}", handle);
    return it->second;
  }
};

std::vector<uint64_t> dataset_dims(hid_t file, const std::string& path, const std::string& name) {
  CSEG_CHECK(H5Lexists(file, name.c_str(), H5P_DEFAULT) > 0, "HDF5 file '{}' has no dataset '{}'", path, name);
  Handle set{H5Dopen2(file, name.c_str(), H5P_DEFAULT), H5Dclose};
  CSEG_CHECK(set.id >= 0, "HDF5 file '{}': '{}' is not a dataset", path, name);
  Handle space{H5Dget_space(set.id), H5Sclose};
  const int rank = space.id >= 0 ? H5Sget_simple_extent_ndims(space.id) : -1;
  CSEG_CHECK(rank >= 0, "HDF5 file '{}': dataset '{}' has no readable extent", path, name);
  std::vector<hsize_t> d(size_t(rank), 0);
  if (rank > 0) H5Sget_simple_extent_dims(space.id, d.data(), nullptr);
  return {d.begin(), d.end()};
}

/// Answers one request: the payload of a successful answer (an error throws).
std::string answer(OpenFiles& open, const Request& r) {
  switch (r.op) {
    case Op::open: {
      const std::string& path = r.text;
      CSEG_CHECK(std::filesystem::exists(path), "HDF5 file '{}' does not exist", path);
      CSEG_CHECK(H5Fis_hdf5(path.c_str()) > 0,
                 "'{}' is not an HDF5 file (a MATLAB v7.3 .mat or an .hdf5 file expected)", path);
      const hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
      CSEG_CHECK(id >= 0, "cannot open HDF5 file '{}'", path);
      const uint64_t handle = open.next++;
      open.files[handle] = {id, path};
      return std::string(reinterpret_cast<const char*>(&handle), sizeof handle);
    }
    case Op::close: {
      auto it = open.files.find(r.handle);
      if (it != open.files.end()) {
        H5Fclose(it->second.first);
        open.files.erase(it);
      }
      return {};
    }
    case Op::dims: {
      const auto& [id, path] = open.at(r.handle);
      const auto d = dataset_dims(id, path, r.text);
      return std::string(reinterpret_cast<const char*>(d.data()), d.size() * sizeof(uint64_t));
    }
    case Op::read:
    case Op::read_slab: {
      const auto& [id, path] = open.at(r.handle);
      const std::string& name = r.text;
      const auto d = dataset_dims(id, path, name);
      const bool slab = r.op == Op::read_slab;
      if (slab)
        CSEG_CHECK(!d.empty() && r.index < d[0], "HDF5 file '{}': dataset '{}' has {} entries, asked for entry {}",
                   path, name, d.empty() ? 0 : d[0], r.index);
      const size_t n = checked_count(d, slab ? 1 : 0, path, name);
      std::string out(n * type_size(r.type), '\0');
      Handle set{H5Dopen2(id, name.c_str(), H5P_DEFAULT), H5Dclose};
      if (!slab) {
        CSEG_CHECK(set.id >= 0 && H5Dread(set.id, native_type(r.type), H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) >= 0,
                   "HDF5 file '{}': dataset '{}' cannot be read as numbers (corrupt, or not a numeric dataset)", path,
                   name);
        return out;
      }
      std::vector<hsize_t> start(d.size(), 0), count(d.begin(), d.end());
      start[0] = r.index;
      count[0] = 1;
      Handle file_space{H5Dget_space(set.id), H5Sclose};
      Handle memory_space{H5Screate_simple(static_cast<int>(count.size()), count.data(), nullptr), H5Sclose};
      CSEG_CHECK(
          set.id >= 0 && file_space.id >= 0 && memory_space.id >= 0 &&
              H5Sselect_hyperslab(file_space.id, H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr) >= 0 &&
              H5Dread(set.id, native_type(r.type), memory_space.id, file_space.id, H5P_DEFAULT, out.data()) >= 0,
          "HDF5 file '{}': entry {} of dataset '{}' cannot be read (corrupt or truncated file)", path, r.index, name);
      return out;
    }
  }
  fail("HDF5 helper: unknown request {}", int(r.op));
}

/// The helper process: answers requests until the parent closes the socket, then exits.
[[noreturn]] void serve(int fd) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the parent
  // A crash ends the helper quietly: the parent reports it, naming the file. (Handlers inherited
  // from the parent, such as a sanitizer's or a fuzzer's, would report it as the parent's.)
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) ::signal(sig, SIG_DFL);
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // errors become cseg's messages, not HDF5's stack dumps
  OpenFiles open;
  while (true) {
    uint8_t head[2];
    uint64_t numbers[2];
    uint32_t length = 0;
    if (!receive_all(fd, head, sizeof head, -1) || !receive_all(fd, numbers, sizeof numbers, -1) ||
        !receive_all(fd, &length, sizeof length, -1))
      ::_exit(0);
    Request r{Op(head[0]), Type(head[1]), numbers[0], numbers[1], std::string(length, '\0')};
    if (length > 0 && !receive_all(fd, r.text.data(), length, -1)) ::_exit(0);
    uint8_t status = 0;
    std::string payload;
    try {
      payload = answer(open, r);
    } catch (const std::exception& e) {  // cseg::Error, or std::bad_alloc from libhdf5's claims
      status = 1;
      payload = e.what();
    }
    const uint64_t size = payload.size();
    if (!send_all(fd, &status, 1) || !send_all(fd, &size, sizeof size) || !send_all(fd, payload.data(), size))
      ::_exit(0);
  }
}

// ---- The parent's side ----------------------------------------------------------------------

/// The running helper (one per process), restarted after it died.
class Helper {
 public:
  /// Sends `r` and returns the answer's payload; throws the helper's error, or an error naming
  /// `path` when the helper died or went silent on it. Call with library_lock() held.
  std::string ask(const Request& r, const std::string& path) {
    if (pid_ < 0) start();
    const uint8_t head[2] = {uint8_t(r.op), uint8_t(r.type)};
    const uint64_t numbers[2] = {r.handle, r.index};
    const uint32_t length = uint32_t(r.text.size());
    uint8_t status = 0;
    uint64_t size = 0;
    std::string payload;
    bool silent = false;
    const int timeout = answer_timeout_ms();
    bool ok = send_all(fd_, head, sizeof head) && send_all(fd_, numbers, sizeof numbers) &&
              send_all(fd_, &length, sizeof length) && send_all(fd_, r.text.data(), length) &&
              receive_all(fd_, &status, 1, timeout, &silent) && receive_all(fd_, &size, sizeof size, timeout, &silent);
    if (ok) {
      payload.resize(size);
      ok = receive_all(fd_, payload.data(), size, timeout, &silent);
    }
    if (!ok) {
      const std::string how = stop(silent);
      fail(
          "HDF5 file '{}': libhdf5 {} while reading it (the file is damaged or crafted; it was read in a helper "
          "process, so nothing else is affected)",
          path, how);
    }
    if (status != 0) throw Error(payload);
    return payload;
  }
  /// Changes every time a helper ends: handles opened in an older one are gone.
  uint64_t generation() const { return generation_; }

 private:
  void start() {
    int fds[2];
    CSEG_CHECK(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0,
               "cannot create a socket for the HDF5 helper process: {}", std::strerror(errno));
    const pid_t pid = ::fork();
    if (pid < 0) {
      ::close(fds[0]);
      ::close(fds[1]);
      fail("cannot start the HDF5 helper process: {}", std::strerror(errno));
    }
    if (pid == 0) {
      ::close(fds[0]);
      serve(fds[1]);
    }
    ::close(fds[1]);
    fd_ = fds[0];
    pid_ = pid;
  }

  /// Ends the helper; says how it ended ("crashed (signal 11, ...)", "did not answer within ...").
  /// `silent`: it is still running but stopped answering; otherwise it closed the socket, which
  /// it only does by ending.
  std::string stop(bool silent) {
    ::close(fd_);
    if (silent) ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    std::string how;
    if (silent)
      how = fmt::format("did not answer within {} s (CSEG_HDF5_TIMEOUT_S)", answer_timeout_ms() / 1000);
    else if (WIFSIGNALED(status))
      how = fmt::format("crashed (signal {}, {})", WTERMSIG(status), ::strsignal(WTERMSIG(status)));
    else
      how = fmt::format("ended unexpectedly (exit status {})", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    fd_ = -1;
    pid_ = -1;
    ++generation_;  // the files it had open are gone with it
    return how;
  }

  int fd_ = -1;
  pid_t pid_ = -1;
  uint64_t generation_ = 0;
};

Helper& helper() {
  static Helper* h = new Helper();  // never destroyed: the helper ends when the process does
  return *h;
}

}  // namespace

uint64_t File::handle() const {
  // A helper that crashed took its open files with it: reopen this one in the new helper.
  if (generation_ != helper().generation() || handle_ == 0) {
    const auto payload = helper().ask({Op::open, Type::u8, 0, 0, path_}, path_);
    CSEG_CHECK(payload.size() == sizeof(uint64_t), "HDF5 helper: malformed answer opening '{}'", path_);
    std::memcpy(&handle_, payload.data(), sizeof handle_);
    generation_ = helper().generation();
  }
  return handle_;
}

File::File(const std::string& path) : path_(path) {
  std::lock_guard<std::mutex> lock(library_lock());
  handle();
}

File::~File() {
  std::lock_guard<std::mutex> lock(library_lock());
  if (handle_ == 0 || generation_ != helper().generation()) return;
  try {
    helper().ask({Op::close, Type::u8, handle_, 0, ""}, path_);
  } catch (const std::exception&) {  // the helper is gone: so is the file
  }
}

std::vector<uint64_t> File::dims(const std::string& name) const {
  std::lock_guard<std::mutex> lock(library_lock());
  const auto payload = helper().ask({Op::dims, Type::u8, handle(), 0, name}, path_);
  std::vector<uint64_t> d(payload.size() / sizeof(uint64_t));
  if (!d.empty()) std::memcpy(d.data(), payload.data(), d.size() * sizeof(uint64_t));
  return d;
}

template <typename T>
std::vector<T> File::read(const std::string& name) const {
  std::lock_guard<std::mutex> lock(library_lock());
  const auto payload = helper().ask({Op::read, type_code<T>(), handle(), 0, name}, path_);
  std::vector<T> out(payload.size() / sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), payload.data(), out.size() * sizeof(T));
  return out;
}

template <typename T>
std::vector<T> File::read_slab(const std::string& name, uint64_t index) const {
  std::lock_guard<std::mutex> lock(library_lock());
  const auto payload = helper().ask({Op::read_slab, type_code<T>(), handle(), index, name}, path_);
  std::vector<T> out(payload.size() / sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), payload.data(), out.size() * sizeof(T));
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
