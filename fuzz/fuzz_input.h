#pragma once
// Shared by the libFuzzer targets: cseg's readers take paths, so each input is written to a file
// first (in /dev/shm when it exists: no disk traffic), and the only exception a reader may throw
// at bad bytes is cseg::Error, the one-line error users see. Anything else escaping (a
// std::bad_alloc, a library's own exception) is a finding: libFuzzer reports it as a crash.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "cseg/core/error.h"

namespace cseg::fuzz {

/// This process's scratch folder (in /dev/shm when it exists: no disk traffic), removed at exit.
inline const std::string& scratch_dir() {
  // Never destroyed, so that the exit handler below can still read it.
  static const std::string* dir = [] {
    const std::filesystem::path base = std::filesystem::exists("/dev/shm") ? "/dev/shm" : "/tmp";
    auto d = base / ("cseg-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(scratch_dir(), ec);
    });
    return new std::string(d.string());
  }();
  return *dir;
}

/// `data` written to a file named `name` in the scratch folder; returns its path.
inline std::string write_input(const uint8_t* data, size_t size, const std::string& name) {
  const std::string path = scratch_dir() + "/" + name;
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f || std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
  return path;
}

/// Runs `read`; a cseg::Error is the expected outcome of bad bytes and is swallowed.
template <typename F>
void expect_clean_error(F&& read) {
  try {
    read();
  } catch (const cseg::Error&) {
  }
}

}  // namespace cseg::fuzz
