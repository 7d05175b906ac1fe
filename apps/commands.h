#pragma once
// The `cseg` subcommands: thin wrappers that parse options, build from the config and call the
// library. Each returns the process exit code.
#include <string>
#include <vector>

namespace cseg::app {

struct ConfigArgs {
  std::string config, env;
  std::vector<std::string> overrides;
};

int train(const ConfigArgs& args, const std::string& command_line);
int eval(const ConfigArgs& args, const std::string& checkpoint, int step, const std::string& split);
int scenario(const ConfigArgs& args, bool json, bool ids);

struct SceneArgs {
  std::string out, fmnist_dir, environment = "studio";
  uint64_t seed = 0;
  int train = 2000, val = 300, test = 500, size = 96, min_items = 2, max_items = 4, threads = 0;
};
int data_fmnist_scenes(const SceneArgs& args);
int list(const std::string& what);

}  // namespace cseg::app
