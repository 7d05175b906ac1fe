#pragma once
/// Errors and checks. Every user-facing failure is a cseg::Error whose message names the file,
/// key or value at fault and what was expected; the CLI prints it on one line and exits 2.
#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join, which error messages use (in <fmt/ranges.h> since fmt 11)

#include <stdexcept>
#include <string>

namespace cseg {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

/// Throws cseg::Error with a fmt-formatted message.
template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) {
  throw Error(fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace cseg

/// CSEG_CHECK(cond, "fmt {}", args...): throws cseg::Error with the message when cond is false.
#define CSEG_CHECK(cond, ...)               \
  do {                                      \
    if (!(cond)) ::cseg::fail(__VA_ARGS__); \
  } while (0)
