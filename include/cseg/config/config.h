#pragma once
/// Experiment configuration: YAML files composed through `_base_`, `key=value` overrides from the
/// command line, and `${name}` references resolved from a separate environment file (machine paths)
/// or the process environment. yaml-cpp stays behind this header.
///
/// Example:
///   auto tree = config::load({"configs/quickstart.yaml", {"train.lr=0.02"}, "env.yaml"});
///   config::Section root = tree.root();
///   double lr = 0.01; root.section("train").read("lr", lr);
///   root.finish_all();   // throws on any key nobody read, naming it and its file
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace cseg::config {

struct LoadOptions {
  std::string path;                    ///< the experiment file
  std::vector<std::string> overrides;  ///< "a.b.c=value", value parsed as YAML
  std::string env_path;                ///< optional env file (flat map name -> string)
};

class Section;

/// A merged configuration tree. Cheap to copy (shared state).
class ConfigTree {
 public:
  struct Impl;
  explicit ConfigTree(std::shared_ptr<Impl> impl);
  Section root() const;
  /// The resolved configuration as YAML text (what a run folder stores).
  std::string dump() const;
  /// Which file (or "command line") set a dotted key; "" when unknown.
  std::string origin(const std::string& dotted_key) const;
  const std::map<std::string, std::string>& env() const;

 private:
  std::shared_ptr<Impl> impl_;
};

/// Loads, composes, overrides and resolves. Throws cseg::Error naming the file on any problem.
ConfigTree load(const LoadOptions& options);

/// Strict typed view of one mapping in the tree. `read` leaves the value untouched when the key is
/// absent (defaults live in the options structs) and throws on a wrong type; `finish` throws if
/// the mapping holds keys no `read`/`section` asked for.
class Section {
 public:
  Section(std::shared_ptr<ConfigTree::Impl> impl, std::string path);

  bool has(const std::string& key) const;
  void read(const std::string& key, bool& out);
  void read(const std::string& key, int& out);
  void read(const std::string& key, int64_t& out);
  void read(const std::string& key, uint64_t& out);
  void read(const std::string& key, double& out);
  void read(const std::string& key, std::string& out);
  void read(const std::string& key, std::vector<int>& out);
  void read(const std::string& key, std::vector<double>& out);
  void read(const std::string& key, std::vector<std::string>& out);
  void read(const std::string& key, std::vector<std::vector<int>>& out);
  /// A scalar as written, or a list of scalars joined by commas (method_options values).
  void read_joined(const std::string& key, std::string& out);
  /// Reads a string and checks it is one of `allowed`; the error lists them.
  void read_choice(const std::string& key, std::string& out, const std::vector<std::string>& allowed);
  /// A sub-mapping (absent -> empty section). Marks the key as used.
  Section section(const std::string& key);
  /// Keys of this mapping, in file order.
  std::vector<std::string> keys() const;
  /// Throws on keys that were never read, naming them and their file.
  void finish() const;
  const std::string& path() const { return path_; }
  std::string where(const std::string& key) const;  ///< "'train.lr' (in FILE)"

 private:
  std::string full(const std::string& key) const;
  template <typename T>
  void read_as(const std::string& key, T& out, const char* expected);

  std::shared_ptr<ConfigTree::Impl> impl_;
  std::string path_;
  std::shared_ptr<std::set<std::string>> used_;
};

}  // namespace cseg::config
