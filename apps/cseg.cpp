// cseg: the command-line program. Parses arguments (CLI11) and calls apps/commands.cpp.
#include <c10/util/Exception.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>

#include "commands.h"
#include "cseg/core/error.h"

namespace {
void add_config_options(CLI::App* cmd, cseg::app::ConfigArgs& a, bool required) {
  auto* opt = cmd->add_option("--config,-c", a.config, "experiment YAML file");
  if (required) opt->required()->check(CLI::ExistingFile);
  cmd->add_option("--env", a.env, "environment file with machine paths (data_root, output_root); default $CSEG_ENV");
  cmd->add_option("overrides", a.overrides, "key=value overrides, e.g. train.iterations=100");
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"cseg: continual semantic segmentation toolbox and benchmark"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("cseg ") + CSEG_VERSION);

  cseg::app::ConfigArgs train_args, eval_args, scen_args;
  auto* train = app.add_subcommand("train", "train and evaluate every method of an experiment, step by step");
  add_config_options(train, train_args, true);

  cseg::app::ConfigArgs pretrain_args;
  auto* pre = app.add_subcommand("pretrain",
                                 "train a model's encoder as an image classifier (the ImageNet step), "
                                 "for model.pretrain / pretrained_mode: backbone");
  add_config_options(pre, pretrain_args, true);
  pre->footer(
      "Example: cseg pretrain -c configs/pretrain/fmnist_fast_scnn.yaml  (reruns resume; a finished run is "
      "found again by its config's hash)");

  std::string checkpoint, split = "test", eval_method;
  int step = 0;
  auto* eval = app.add_subcommand("eval", "evaluate a step checkpoint on that step's test (or val) set");
  add_config_options(eval, eval_args, true);
  eval->add_option("--checkpoint", checkpoint, "checkpoints/step<k>.pt of a run")->required()->check(CLI::ExistingFile);
  eval->add_option("--step", step, "the step the checkpoint ends")->required();
  eval->add_option("--split", split, "test or val");
  eval->add_option("--method", eval_method,
                   "the method that trained the checkpoint, for its prediction rule and state (default: the run "
                   "folder's name RUN/<method>/checkpoints, else the experiment's only method)");

  bool json = false, ids = false;
  auto* scen = app.add_subcommand("scenario", "show a scenario's steps: classes, image counts, ids, label maps");
  add_config_options(scen, scen_args, false);
  scen->add_flag("--json", json, "print every step's classes, image ids and label maps as JSON");
  scen->add_flag("--ids", ids, "include image ids (implied by --json)");

  cseg::app::SceneArgs scene;
  auto* data = app.add_subcommand("data", "prepare data");
  data->require_subcommand(1);
  auto* fm =
      data->add_subcommand("fmnist-scenes", "compose Fashion-MNIST photos into segmentation scenes (VOC layout)");
  fm->add_option("--out", scene.out, "output folder")->required();
  fm->add_option("--seed", scene.seed, "random seed");
  fm->add_option("--train", scene.train, "number of train scenes");
  fm->add_option("--val", scene.val, "number of val scenes");
  fm->add_option("--test", scene.test, "number of test scenes");
  fm->add_option("--size", scene.size, "scene width and height in pixels");
  fm->add_option("--min-items", scene.min_items, "fewest items per scene");
  fm->add_option("--max-items", scene.max_items, "most items per scene");
  fm->add_option("--min-scale", scene.min_scale, "smallest item side, as a multiple of the photos' 28 px");
  fm->add_option("--max-scale", scene.max_scale, "largest item side, as a multiple of the photos' 28 px");
  fm->add_option("--environment", scene.environment, "studio, office, warehouse, outdoor or night");
  fm->add_option("--fmnist-dir", scene.fmnist_dir, "folder of the Fashion-MNIST IDX files");
  fm->add_option("--threads", scene.threads, "threads (0: all cores)");
  fm->add_option("--frames", scene.frames,
                 "frames per video sequence (> 1: items move; writes Depth/, Flow/ and ImageSets/Sequences/)");

  cseg::app::ConfigArgs pred_args, info_args, check_args;
  cseg::app::ModelSource source, check_source;
  cseg::app::PredictArgs pred;
  auto* predict = app.add_subcommand("predict", "segment an image or a folder of images (label PNG, overlay, .npy)");
  add_config_options(predict, pred_args, true);
  predict->add_option("--checkpoint", source.checkpoint, "a cseg step checkpoint (heads from the file)")
      ->check(CLI::ExistingFile);
  predict
      ->add_option("--weights", source.weights,
                   "a torch.save state dict (torchvision, reference code) or cseg checkpoint")
      ->check(CLI::ExistingFile);
  predict->add_option("--weights-mode", source.weights_mode, "full (default), backbone or skip_classifier");
  predict->add_option("--classes", source.classes, "classes of the model for --weights (default: the dataset's)");
  predict->add_option("--input,-i", pred.input, "an image file or a folder (searched recursively)")->required();
  predict->add_option("--out,-o", pred.out, "output folder (keeps the input's sub-folders)")->required();
  predict->add_option("--batch-size", pred.batch_size, "images per forward (same-size images are batched)");
  predict->add_flag("--probs", pred.probs, "also write <name>_probs.npy (float32 [C, H, W] softmax)");
  predict->add_flag("--logits", pred.logits, "also write <name>_logits.npy (float32 [C, H, W])");
  predict->add_option("--alpha", pred.alpha, "overlay opacity of the class colours (0..1)");

  cseg::app::ModelInfoArgs info;
  std::string size = "512x512";
  auto* minfo = app.add_subcommand("model-info", "parameters and multiply-adds per module of the config's model");
  add_config_options(minfo, info_args, false);
  minfo->add_option("--classes", info.classes, "classes (default: the dataset's)");
  minfo->add_option("--size", size, "input HEIGHTxWIDTH, e.g. 1024x2048");
  minfo->add_option("--batch", info.batch, "batch size");
  minfo->add_option("--depth", info.depth, "module levels to list (1: top-level modules)");
  minfo->add_flag("--json", info.json, "print JSON");

  cseg::app::ConfigArgs bench_args;
  cseg::app::BenchModelArgs bench;
  auto* bm = app.add_subcommand("bench-model", "inference latency and throughput of the config's model at given sizes");
  add_config_options(bm, bench_args, false);
  bm->add_option("--size", bench.sizes, "input HEIGHTxWIDTH, repeatable (default 512x512)");
  bm->add_option("--classes", bench.classes, "classes (default: the dataset's, or 21 without a config)");
  bm->add_option("--batch", bench.batch, "batch size");
  bm->add_option("--warmup", bench.warmup, "untimed runs first");
  bm->add_option("--runs", bench.runs, "timed runs");

  std::string suite_file;
  std::vector<std::string> suite_methods, suite_overrides;
  auto* ste = app.add_subcommand("suite", "run a grid of experiments (scenarios x methods x seeds) and tabulate it");
  ste->add_option("file", suite_file, "suite YAML: name, output_dir, scenarios, methods, seeds, overrides")
      ->required()
      ->check(CLI::ExistingFile);
  ste->add_option("overrides", suite_overrides,
                  "key=value settings of the suite file, e.g. output_dir=runs/x 'seeds=[0,1]'");
  // One value per flag (comma-separated for several) so that overrides after it stay overrides.
  ste->add_option("--methods", suite_methods, "run only these methods of the grid (comma-separated)")
      ->expected(1)
      ->delimiter(',')
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);

  std::vector<std::string> compare_paths;
  std::string compare_md, compare_csv;
  auto* cmp =
      app.add_subcommand("compare", "one table of final old/new/all mIoU, forgetting, time and memory per method");
  cmp->add_option("runs", compare_paths, "run folders or results.json files (searched recursively)")->required();
  cmp->add_option("--markdown", compare_md, "also write the Markdown table to this file");
  cmp->add_option("--csv", compare_csv, "also write the table as CSV");

  int launch_nproc = 2, launch_port = 0;
  auto* lch = app.add_subcommand("launch", "data-parallel training: run a cseg command as N processes on this machine");
  lch->add_option("--nproc", launch_nproc, "processes (each takes train.batch_size / N of every batch)");
  lch->add_option("--master-port", launch_port, "rendezvous port on 127.0.0.1 (default: a free one)");
  lch->prefix_command();
  lch->footer(
      "Example: cseg launch --nproc 2 train -c configs/quickstart.yaml threads=1\n"
      "Several machines: run `cseg train` on each with torchrun's RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT.");

  std::vector<std::string> report_paths;
  std::string report_out, report_title;
  auto* rep = app.add_subcommand("report", "one self-contained HTML page: tables, charts and predictions of runs");
  rep->add_option("runs", report_paths, "run folders, suite folders or results.json files (searched recursively)")
      ->required();
  rep->add_option("-o,--output", report_out, "the HTML file (default: report.html in the first folder)");
  rep->add_option("--title", report_title, "the page's title (default: the folder's name)");

  std::string weights_file;
  auto* wts = app.add_subcommand("weights", "inspect PyTorch / cseg weight files");
  wts->require_subcommand(1);
  auto* wlist = wts->add_subcommand("list", "list the tensors of a weights file (key, dtype, shape)");
  wlist->add_option("file", weights_file, "torch.save file or cseg checkpoint")->required()->check(CLI::ExistingFile);
  auto* wcheck = wts->add_subcommand("check", "the load report of a weights file against the config's model");
  add_config_options(wcheck, check_args, false);
  wcheck->add_option("--weights", check_source.weights, "torch.save file or cseg checkpoint")
      ->required()
      ->check(CLI::ExistingFile);
  wcheck->add_option("--mode", check_source.weights_mode, "full (default), backbone or skip_classifier");
  wcheck->add_option("--classes", check_source.classes, "classes of the model (default: the dataset's)");

  std::string topic;
  auto* lst = app.add_subcommand(
      "list", "list datasets, tasks, models, methods, modes, protocols, losses, label spaces, environments");
  lst->add_option("topic", topic, "one topic only");

  CLI11_PARSE(app, argc, argv);
  std::string command_line;
  for (int i = 0; i < argc; ++i) command_line += (i ? " " : "") + std::string(argv[i]);
  try {
    if (*train) return cseg::app::train(train_args, command_line);
    if (*pre) return cseg::app::pretrain(pretrain_args, command_line);
    if (*eval) return cseg::app::eval(eval_args, checkpoint, step, split, eval_method);
    if (*scen) return cseg::app::scenario(scen_args, json, ids);
    if (*fm) return cseg::app::data_fmnist_scenes(scene);
    if (*lst) return cseg::app::list(topic);
    if (*predict) return cseg::app::predict(pred_args, source, pred);
    if (*minfo) {
      std::tie(info.height, info.width) = cseg::app::parse_size(size);
      return cseg::app::model_info(info_args, info);
    }
    char self[4096] = {0};
    const ssize_t self_len = readlink("/proc/self/exe", self, sizeof self - 1);
    const std::string binary = self_len > 0 ? std::string(self, size_t(self_len)) : std::string(argv[0]);
    if (*ste) return cseg::app::suite(suite_file, suite_overrides, suite_methods, binary);
    if (*lch) return cseg::app::launch(launch_nproc, launch_port, lch->remaining(), binary);
    if (*bm) return cseg::app::bench_model(bench_args, bench);
    if (*cmp) return cseg::app::compare(compare_paths, compare_md, compare_csv);
    if (*rep) return cseg::app::report(report_paths, report_out, report_title);
    if (*wlist) return cseg::app::weights_list(weights_file);
    if (*wcheck) return cseg::app::weights_check(check_args, check_source);
  } catch (const cseg::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  } catch (const std::filesystem::filesystem_error& e) {
    // An unwritable or unusable path (permissions, a file where a folder should be, a full disk):
    // the user's environment, reported like bad input.
    // what(): "filesystem error: cannot create directories: Not a directory [PATH]".
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  } catch (const c10::Error& e) {
    std::cerr << "error (libtorch): " << e.what_without_backtrace() << "\n";
    return 3;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 3;
  }
  return 0;
}
