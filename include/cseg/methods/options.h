#pragma once
/// Typed access to one method's `method_options` (raw strings from the config). Every option a
/// method reads has a default (the paper's constant); `finish` rejects keys nobody read, naming
/// them and listing the method's known options.
#include <map>
#include <set>
#include <string>
#include <vector>

namespace cseg::methods {

class Options {
 public:
  Options(std::string method, std::map<std::string, std::string> values = {});
  double real(const std::string& key, double fallback);
  int integer(const std::string& key, int fallback);
  bool flag(const std::string& key, bool fallback);
  std::string choice(const std::string& key, const std::string& fallback, const std::vector<std::string>& allowed);
  /// Some of `allowed`: a comma-separated list of them (a YAML list arrives joined), `all` (or
  /// `true`) for every one, `none` (or `false`, the default) for none.
  std::set<std::string> subset(const std::string& key, const std::vector<std::string>& allowed);
  /// Throws on options that were given but never read.
  void finish() const;

 private:
  const std::string* raw(const std::string& key);
  std::string where(const std::string& key) const { return "method_options." + method_ + "." + key; }
  std::string method_;
  std::map<std::string, std::string> values_;
  std::set<std::string> known_;
};

}  // namespace cseg::methods
