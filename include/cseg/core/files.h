#pragma once
/// Small file helpers. Every file cseg writes that a rerun depends on is written atomically:
/// to a temporary name in the same folder, then renamed over the target.
#include <functional>
#include <string>

namespace cseg::core {

/// Writes `path` atomically: `write` fills a temporary file beside it, which is then renamed over
/// `path`. If writing fails (a full disk, say) the temporary file is removed, `path` is left as it
/// was, and the error names `path`.
void replace_atomically(const std::string& path, const std::function<void(const std::string& tmp)>& write);
void write_text_atomic(const std::string& path, const std::string& text);
/// A temporary name beside `path`, unique per process and thread (`<path>.tmp.<pid>.<tid>`), so
/// processes writing the same file at once (a shared cache) never rename each other's file.
std::string temp_path_for(const std::string& path);
std::string read_text(const std::string& path);
/// Appends `line` and a newline, checked: a failed write (a full disk) is an error naming `path`.
void append_line(const std::string& path, const std::string& line);

/// An exclusive advisory lock (flock) on `path` (created if missing), held while the object
/// lives: processes that share a cache (a suite's runs) take turns filling one entry.
class FileLock {
 public:
  explicit FileLock(const std::string& path);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace cseg::core
