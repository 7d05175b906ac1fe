#include "cseg/core/files.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "cseg/core/error.h"

namespace fs = std::filesystem;

namespace cseg::core {

std::string temp_path_for(const std::string& path) {
  return path + ".tmp." + std::to_string(getpid()) + "." +
         std::to_string(std::hash<std::thread::id>{}(std::this_thread::get_id()) % 100000);
}

void replace_atomically(const std::string& path, const std::function<void(const std::string& tmp)>& write) {
  const std::string tmp = temp_path_for(path);
  try {
    write(tmp);
  } catch (const std::exception& e) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    std::string why = e.what();
    why = why.substr(0, why.find('\n'));  // LibTorch's messages go on with a backtrace
    fail("writing '{}' failed, the file is left as it was: {}", path, why);
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    fail("cannot replace '{}' with its new version: {}", path, ec.message());
  }
}

void write_text_atomic(const std::string& path, const std::string& text) {
  replace_atomically(path, [&](const std::string& tmp) {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    CSEG_CHECK(out.good(), "cannot open '{}' for writing", tmp);
    out << text;
    out.flush();
    CSEG_CHECK(out.good(), "the write did not complete (disk full?)");
  });
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  CSEG_CHECK(in.good(), "cannot read '{}'", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void append_line(const std::string& path, const std::string& line) {
  std::ofstream out(path, std::ios::app);
  CSEG_CHECK(out.good(), "cannot append to '{}'", path);
  out << line << "\n";
  out.flush();
  CSEG_CHECK(out.good(), "appending to '{}' failed (disk full?)", path);
}

FileLock::FileLock(const std::string& path) {
  fd_ = ::open(path.c_str(), O_CREAT | O_RDWR, 0644);
  CSEG_CHECK(fd_ >= 0, "cannot open the lock file '{}'", path);
  if (::flock(fd_, LOCK_EX) != 0) {
    ::close(fd_);
    fail("cannot lock '{}'", path);
  }
}

FileLock::~FileLock() {
  ::flock(fd_, LOCK_UN);
  ::close(fd_);
}

}  // namespace cseg::core
