#pragma once
// The `cseg` subcommands: thin wrappers that parse options, build from the config and call the
// library. Each returns the process exit code.
#include <string>
#include <utility>
#include <vector>

namespace cseg::app {

struct ConfigArgs {
  std::string config, env;
  std::vector<std::string> overrides;
};

int train(const ConfigArgs& args, const std::string& command_line);
/// Classification pretraining of a model's encoder (pretrain/pretrain.h).
int pretrain(const ConfigArgs& args, const std::string& command_line);
/// Scores a step checkpoint as the trainer did: the method that trained it (`method`, else found
/// from the run folder) supplies its prediction rule (SSUL's unknown class) and saved state.
int eval(const ConfigArgs& args, const std::string& checkpoint, int step, const std::string& split,
         const std::string& method);
int scenario(const ConfigArgs& args, bool json, bool ids);

struct SceneArgs {
  std::string out, fmnist_dir, environment = "studio";
  uint64_t seed = 0;
  int train = 2000, val = 300, test = 500, size = 96, min_items = 2, max_items = 4, threads = 0;
  int frames = 1;                           ///< > 1: video sequences of this many frames
  double min_scale = 1.4, max_scale = 3.2;  ///< item side = 28 px x a scale in this range
};
int data_fmnist_scenes(const SceneArgs& args);

/// Where a model's weights come from: a cseg checkpoint (heads from the file) or a torch.save /
/// cseg weights file loaded into a model of `classes` classes (0: the dataset's class count).
struct ModelSource {
  std::string checkpoint, weights, weights_mode = "full";
  int classes = 0;
};

struct PredictArgs {
  std::string input, out;
  int batch_size = 4;
  bool probs = false, logits = false;
  double alpha = 0.5;
};
int predict(const ConfigArgs& args, const ModelSource& source, const PredictArgs& p);

/// "512x1024" -> {512, 1024}; throws naming the value otherwise.
std::pair<int, int> parse_size(const std::string& size);

struct ModelInfoArgs {
  int classes = 0, batch = 1, depth = 2, height = 512, width = 512;
  bool json = false;
};
int model_info(const ConfigArgs& args, ModelInfoArgs m);

struct BenchModelArgs {
  std::vector<std::string> sizes{"512x512"};
  int classes = 0, batch = 1, warmup = 3, runs = 10;
};
int bench_model(const ConfigArgs& args, BenchModelArgs b);

/// Runs a grid of experiments (scenario configs x methods x seeds), one `cseg train` process
/// each (finished runs are skipped by the trainer, unfinished ones resume), then writes the
/// aggregated table (mean ± std over seeds) as table.md and table.csv in the suite's folder.
int suite(const std::string& file, const std::vector<std::string>& overrides_of_file,
          const std::vector<std::string>& only_methods, const std::string& binary);
int compare(const std::vector<std::string>& paths, const std::string& markdown, const std::string& csv);
/// Runs `args` (a cseg command line) as `nproc` processes of one data-parallel group on this
/// machine (RANK, WORLD_SIZE, MASTER_ADDR/PORT set as torchrun does); port 0 = a free one.
/// Returns the first non-zero exit code, after stopping the other processes.
int launch(int nproc, int port, const std::vector<std::string>& args, const std::string& binary);
/// Writes the HTML report of the runs under `paths` (default: PATH/report.html of the first path).
int report(const std::vector<std::string>& paths, std::string out, std::string title);
int weights_list(const std::string& file);
int weights_check(const ConfigArgs& args, const ModelSource& source);
int list(const std::string& what);

}  // namespace cseg::app
