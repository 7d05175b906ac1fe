#include "cseg/config/config.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "cseg/core/error.h"

namespace fs = std::filesystem;

namespace cseg::config {

struct ConfigTree::Impl {
  YAML::Node root = YAML::Node(YAML::NodeType::Map);
  std::map<std::string, std::string> origins;  // dotted key -> file that set it
  std::map<std::string, std::string> env;
  std::map<std::string, std::shared_ptr<std::set<std::string>>> used;  // section path -> keys read
};

namespace {

std::string join(const std::string& prefix, const std::string& key) {
  return prefix.empty() ? key : prefix + "." + key;
}

void record_origins(const YAML::Node& node, const std::string& prefix, const std::string& origin,
                    std::map<std::string, std::string>& origins) {
  if (!prefix.empty()) origins[prefix] = origin;
  if (node.IsMap())
    for (const auto& kv : node) record_origins(kv.second, join(prefix, kv.first.as<std::string>()), origin, origins);
}

/// Every mapping key in `node` must be a plain scalar: keys become dotted paths.
void check_keys(const YAML::Node& node, const std::string& path, const std::string& prefix) {
  if (node.IsMap()) {
    for (const auto& kv : node) {
      CSEG_CHECK(kv.first.IsScalar(),
                 "config file '{}': a key under '{}' is not a plain name (a list or a mapping "
                 "used as a key, line {})",
                 path, prefix.empty() ? "the top level" : prefix, kv.first.Mark().line + 1);
      check_keys(kv.second, path, join(prefix, kv.first.Scalar()));
    }
  } else if (node.IsSequence()) {
    for (const auto& item : node) check_keys(item, path, prefix);
  }
}

/// Deep-merges `over` into `base`: mappings merge key by key, anything else replaces.
void merge_into(YAML::Node base, const YAML::Node& over) {
  for (const auto& kv : over) {
    const auto key = kv.first.as<std::string>();
    if (kv.second.IsMap() && base[key] && base[key].IsMap()) {
      merge_into(base[key], kv.second);
    } else {
      base[key] = YAML::Clone(kv.second);
    }
  }
}

/// The most values one config file may hold once its aliases are expanded. YAML aliases share a
/// node, but composing configs copies and walks the expanded tree: ten levels of ten aliases each
/// (a few hundred bytes of text) would make 10^10 values.
constexpr size_t kMaxConfigValues = 1000000;

/// Counts `root`'s values as expanded (aliases counted at each use), stopping past kMaxConfigValues.
size_t expanded_size(const YAML::Node& root) {
  size_t count = 0;
  std::vector<YAML::Node> pending{root};
  while (!pending.empty() && count <= kMaxConfigValues) {
    YAML::Node node = pending.back();
    pending.pop_back();
    ++count;
    if (node.IsMap()) {
      for (const auto& kv : node) {
        pending.push_back(kv.first);
        pending.push_back(kv.second);
      }
    } else if (node.IsSequence()) {
      for (const auto& item : node) pending.push_back(item);
    }
  }
  return count;
}

YAML::Node parse_file(const std::string& path) {
  CSEG_CHECK(fs::exists(path), "config file '{}' does not exist", path);
  // Not a device or a pipe (a `_base_: /dev/zero` would read for ever).
  CSEG_CHECK(fs::is_regular_file(path), "config file '{}' is not a regular file", path);
  try {
    YAML::Node node = YAML::LoadFile(path);
    if (node.IsNull()) return YAML::Node(YAML::NodeType::Map);
    CSEG_CHECK(node.IsMap(), "config file '{}': expected a mapping at the top level", path);
    CSEG_CHECK(expanded_size(node) <= kMaxConfigValues,
               "config file '{}' holds more than {} values once its aliases (*name) are expanded", path,
               kMaxConfigValues);
    check_keys(node, path, "");
    return node;
  } catch (const YAML::Exception& e) {
    fail("config file '{}': YAML syntax error at line {}, column {}: {}", path, e.mark.line + 1, e.mark.column + 1,
         e.msg);
  }
}

/// Loads `path` with its `_base_` files merged underneath, recording which file set each key.
void load_composed(const std::string& path, ConfigTree::Impl& impl, std::vector<std::string>& stack) {
  std::string canonical = fs::weakly_canonical(path).string();
  CSEG_CHECK(std::find(stack.begin(), stack.end(), canonical) == stack.end(),
             "config file '{}' includes itself through _base_", path);
  stack.push_back(canonical);
  YAML::Node node = parse_file(path);
  if (node["_base_"]) {
    std::vector<std::string> bases;
    const auto& b = node["_base_"];
    if (b.IsScalar())
      bases.push_back(b.Scalar());
    else if (b.IsSequence())
      for (const auto& x : b) {
        CSEG_CHECK(x.IsScalar(), "config file '{}': _base_ must be a file name or a list of them", path);
        bases.push_back(x.Scalar());
      }
    else
      fail("config file '{}': _base_ must be a file name or a list of them", path);
    for (const auto& base : bases) {
      fs::path p = fs::path(path).parent_path() / base;
      load_composed(p.string(), impl, stack);
    }
    node.remove("_base_");
  }
  merge_into(impl.root, node);
  record_origins(node, "", path, impl.origins);
  stack.pop_back();
}

void apply_override(const std::string& text, ConfigTree::Impl& impl) {
  auto eq = text.find('=');
  CSEG_CHECK(eq != std::string::npos && eq > 0, "override '{}': expected key=value, e.g. train.lr=0.01", text);
  std::string key = text.substr(0, eq);
  std::string value = text.substr(eq + 1);
  YAML::Node parsed;
  try {
    parsed = YAML::Load(value);
  } catch (const YAML::Exception& e) {
    fail("override '{}': the value is not valid YAML: {}", text, e.msg);
  }
  // Walk/create the path. yaml-cpp nodes are handles, so keep a chain of them.
  std::vector<std::string> parts;
  std::stringstream ss(key);
  for (std::string part; std::getline(ss, part, '.');) {
    CSEG_CHECK(!part.empty(), "override '{}': empty component in key '{}'", text, key);
    parts.push_back(part);
  }
  std::vector<YAML::Node> chain{impl.root};
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    YAML::Node next = chain.back()[parts[i]];
    if (!next || !next.IsMap()) {
      CSEG_CHECK(!next || next.IsNull(), "override '{}': '{}' is not a mapping", text, parts[i]);
      chain.back()[parts[i]] = YAML::Node(YAML::NodeType::Map);
      next.reset(chain.back()[parts[i]]);
    }
    chain.push_back(next);
  }
  chain.back()[parts.back()] = parsed;
  record_origins(parsed, key, "command line", impl.origins);
}

std::map<std::string, std::string> load_env(const std::string& path) {
  std::map<std::string, std::string> env{{"data_root", "data"}, {"output_root", "runs"}};
  if (path.empty()) return env;
  YAML::Node node = parse_file(path);
  for (const auto& kv : node) {
    CSEG_CHECK(kv.second.IsScalar(), "env file '{}': key '{}' must be a plain string value", path,
               kv.first.as<std::string>());
    env[kv.first.as<std::string>()] = kv.second.as<std::string>();
  }
  return env;
}

/// Replaces ${name} in every string scalar with the env file's value or the environment variable.
void interpolate(YAML::Node node, const std::string& prefix, const ConfigTree::Impl& impl) {
  static const std::regex ref(R"(\$\{([A-Za-z_][A-Za-z0-9_]*)\})");
  if (node.IsMap()) {
    for (auto kv : node) interpolate(kv.second, join(prefix, kv.first.as<std::string>()), impl);
  } else if (node.IsSequence()) {
    for (size_t i = 0; i < node.size(); ++i) interpolate(node[i], prefix, impl);
  } else if (node.IsScalar()) {
    std::string s = node.Scalar();
    if (s.find("${") == std::string::npos) return;
    std::string out;
    std::smatch m;
    auto begin = s.cbegin();
    while (std::regex_search(begin, s.cend(), m, ref)) {
      out.append(begin, m[0].first);
      std::string name = m[1];
      auto it = impl.env.find(name);
      if (it != impl.env.end()) {
        out += it->second;
      } else if (const char* v = std::getenv(name.c_str())) {
        out += v;
      } else {
        auto o = impl.origins.find(prefix);
        fail(
            "config key '{}' (in {}) refers to ${{{}}}, which is set neither in the env file nor "
            "as an environment variable",
            prefix, o == impl.origins.end() ? "?" : o->second, name);
      }
      begin = m[0].second;
    }
    out.append(begin, s.cend());
    node = out;
  }
}

}  // namespace

ConfigTree load(const LoadOptions& options) {
  auto impl = std::make_shared<ConfigTree::Impl>();
  std::vector<std::string> stack;
  try {
    if (!options.path.empty()) load_composed(options.path, *impl, stack);  // empty: overrides only
    for (const auto& o : options.overrides) apply_override(o, *impl);
    impl->env = load_env(options.env_path);
    interpolate(impl->root, "", *impl);
  } catch (const YAML::Exception& e) {  // a shape the checks above did not foresee
    fail("config file '{}' (or one it composes): cannot be used: {}", options.path, e.what());
  }
  return ConfigTree(impl);
}

ConfigTree::ConfigTree(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
Section ConfigTree::root() const { return Section(impl_, ""); }
std::string ConfigTree::dump() const {
  YAML::Emitter out;
  out << impl_->root;
  return std::string(out.c_str()) + "\n";
}
std::string ConfigTree::origin(const std::string& key) const {
  auto it = impl_->origins.find(key);
  return it == impl_->origins.end() ? "" : it->second;
}
const std::map<std::string, std::string>& ConfigTree::env() const { return impl_->env; }

// ---------------------------------------------------------------------------------------------

namespace {
YAML::Node lookup(const YAML::Node& root, const std::string& path) {
  YAML::Node node = root;
  if (path.empty()) return node;
  std::stringstream ss(path);
  for (std::string part; std::getline(ss, part, '.');) {
    if (!node.IsMap()) return YAML::Node();
    // reset(), not operator=: assigning a yaml-cpp node writes through the handle into the tree.
    YAML::Node child = node[part];
    if (!child) return YAML::Node();
    node.reset(child);
  }
  return node;
}
}  // namespace

Section::Section(std::shared_ptr<ConfigTree::Impl> impl, std::string path)
    : impl_(std::move(impl)), path_(std::move(path)) {
  auto& slot = impl_->used[path_];
  if (!slot) slot = std::make_shared<std::set<std::string>>();
  used_ = slot;
}

std::string Section::full(const std::string& key) const { return join(path_, key); }

std::string Section::where(const std::string& key) const {
  std::string k = full(key);
  // The nearest enclosing key with a recorded origin names the file.
  std::string probe = k;
  while (true) {
    auto it = impl_->origins.find(probe);
    if (it != impl_->origins.end()) return fmt::format("'{}' (in {})", k, it->second);
    auto dot = probe.rfind('.');
    if (dot == std::string::npos) break;
    probe = probe.substr(0, dot);
  }
  return fmt::format("'{}'", k);
}

bool Section::has(const std::string& key) const {
  YAML::Node n = lookup(impl_->root, full(key));
  return n && !n.IsNull();
}

template <typename T>
void Section::read_as(const std::string& key, T& out, const char* expected) {
  used_->insert(key);
  YAML::Node n = lookup(impl_->root, full(key));
  if (!n || n.IsNull()) return;
  try {
    out = n.as<T>();
  } catch (const YAML::Exception&) {
    YAML::Emitter e;
    e << YAML::Flow << n;
    fail("config key {}: expected {}, got '{}'", where(key), expected, e.c_str());
  }
}

void Section::read(const std::string& k, bool& o) { read_as(k, o, "true or false"); }
void Section::read(const std::string& k, int& o) { read_as(k, o, "an integer"); }
void Section::read(const std::string& k, int64_t& o) { read_as(k, o, "an integer"); }
void Section::read(const std::string& k, uint64_t& o) { read_as(k, o, "a non-negative integer"); }
void Section::read(const std::string& k, double& o) { read_as(k, o, "a number"); }
void Section::read(const std::string& k, std::string& o) {
  used_->insert(k);
  YAML::Node n = lookup(impl_->root, full(k));
  if (!n || n.IsNull()) return;
  CSEG_CHECK(n.IsScalar(), "config key {}: expected a string, got a {}", where(k), n.IsMap() ? "mapping" : "list");
  o = n.Scalar();
}
void Section::read_joined(const std::string& k, std::string& o) {
  YAML::Node n = lookup(impl_->root, full(k));
  if (!n || !n.IsSequence()) return read(k, o);
  used_->insert(k);
  std::vector<std::string> items;
  for (const auto& x : n) {
    CSEG_CHECK(x.IsScalar(), "config key {}: expected a value or a list of values, got a nested list or mapping",
               where(k));
    items.push_back(x.Scalar());
  }
  o = fmt::format("{}", fmt::join(items, ","));
}
void Section::read(const std::string& k, std::vector<int>& o) { read_as(k, o, "a list of integers"); }
void Section::read(const std::string& k, std::vector<double>& o) { read_as(k, o, "a list of numbers"); }
void Section::read(const std::string& k, std::vector<std::string>& o) { read_as(k, o, "a list of strings"); }
void Section::read(const std::string& k, std::vector<std::vector<int>>& o) {
  read_as(k, o, "a list of lists of integers");
}

void Section::read_choice(const std::string& key, std::string& out, const std::vector<std::string>& allowed) {
  read(key, out);
  if (std::find(allowed.begin(), allowed.end(), out) == allowed.end())
    fail("config key {}: unknown value '{}'; expected one of: {}", where(key), out, fmt::join(allowed, ", "));
}

Section Section::section(const std::string& key) {
  used_->insert(key);
  YAML::Node n = lookup(impl_->root, full(key));
  CSEG_CHECK(!n || n.IsNull() || n.IsMap(), "config key {}: expected a mapping", where(key));
  return Section(impl_, full(key));
}

std::vector<std::string> Section::keys() const {
  std::vector<std::string> out;
  YAML::Node n = lookup(impl_->root, path_);
  if (n && n.IsMap())
    for (const auto& kv : n) out.push_back(kv.first.as<std::string>());
  return out;
}

void Section::finish() const {
  auto all = keys();
  std::vector<std::string> known(used_->begin(), used_->end());
  for (const auto& k : all) {
    if (!used_->count(k)) fail("unknown config key {}; known keys here: {}", where(k), fmt::join(known, ", "));
  }
}

}  // namespace cseg::config
