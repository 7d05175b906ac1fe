#include "cseg/methods/options.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <sstream>

#include "cseg/core/error.h"

namespace cseg::methods {

Options::Options(std::string method, std::map<std::string, std::string> values)
    : method_(std::move(method)), values_(std::move(values)) {}

const std::string* Options::raw(const std::string& key) {
  known_.insert(key);
  auto it = values_.find(key);
  return it == values_.end() ? nullptr : &it->second;
}

double Options::real(const std::string& key, double fallback) {
  const std::string* v = raw(key);
  if (!v) return fallback;
  try {
    size_t used = 0;
    double d = std::stod(*v, &used);
    if (used == v->size()) return d;
  } catch (const std::exception&) {
  }
  fail("config key '{}': expected a number, got '{}'", where(key), *v);
}

int Options::integer(const std::string& key, int fallback) {
  const std::string* v = raw(key);
  if (!v) return fallback;
  try {
    size_t used = 0;
    int i = std::stoi(*v, &used);
    if (used == v->size()) return i;
  } catch (const std::exception&) {
  }
  fail("config key '{}': expected an integer, got '{}'", where(key), *v);
}

bool Options::flag(const std::string& key, bool fallback) {
  const std::string* v = raw(key);
  if (!v) return fallback;
  if (*v == "true") return true;
  if (*v == "false") return false;
  fail("config key '{}': expected true or false, got '{}'", where(key), *v);
}

std::string Options::choice(const std::string& key, const std::string& fallback,
                            const std::vector<std::string>& allowed) {
  const std::string* v = raw(key);
  if (!v) return fallback;
  CSEG_CHECK(std::find(allowed.begin(), allowed.end(), *v) != allowed.end(), "config key '{}': '{}' is not one of {}",
             where(key), *v, fmt::join(allowed, ", "));
  return *v;
}

std::set<std::string> Options::subset(const std::string& key, const std::vector<std::string>& allowed) {
  const std::string* v = raw(key);
  if (!v || *v == "none" || *v == "false") return {};
  if (*v == "all" || *v == "true") return {allowed.begin(), allowed.end()};
  std::set<std::string> out;
  std::stringstream list(*v);
  for (std::string item; std::getline(list, item, ',');) {
    item.erase(0, item.find_first_not_of(' '));
    item.erase(item.find_last_not_of(' ') + 1);
    CSEG_CHECK(std::find(allowed.begin(), allowed.end(), item) != allowed.end(),
               "config key '{}': '{}' is not one of {} (or all, none)", where(key), item, fmt::join(allowed, ", "));
    out.insert(item);
  }
  return out;
}

void Options::finish() const {
  for (const auto& [k, v] : values_)
    CSEG_CHECK(known_.count(k), "config key '{}': unknown option of method {}; known: {}", where(k), method_,
               fmt::join(known_, ", "));
}

}  // namespace cseg::methods
