#pragma once
// A tiny 5-class experiment (folder format, 32x32 images) for trainer and CLI tests:
// step 0 = {0, 1, 2}, step 1 = {3, 4}.
#include "cseg/config/experiment.h"
#include "cseg/core/error.h"
#include "cseg/data/fmnist/scenes.h"
#include "fixtures.h"

namespace cseg::test {

inline void write_tiny_dataset(const fs::path& root) {
  std::vector<cv::Mat> train, val;
  for (int i = 0; i < 12; ++i) {
    int a = 1 + i % 4, b = 1 + (i + 1) % 4;
    train.push_back(label_map(32, 32, {{a, 2 + i % 5, 3, 12, 12}, {b, 16, 14 + i % 3, 12, 12}}));
  }
  for (int i = 0; i < 4; ++i)
    val.push_back(label_map(32, 32, {{1 + i, 4, 4, 12, 12}, {1 + (i + 2) % 4, 18, 16, 10, 10}}));
  write_folder_dataset(root, "train", train, "tr");
  write_folder_dataset(root, "val", val, "va");
  // Saliency maps for SSUL: every labelled (non-background) pixel.
  fs::create_directories(root / "SaliencyMap");
  data::Palette gray(256, {0, 0, 0});
  gray[1] = {255, 255, 255};
  for (size_t i = 0; i < train.size(); ++i) {
    cv::Mat s = (train[i] != 0) / 255;
    data::write_label_png((root / "SaliencyMap" / ("tr" + std::to_string(i) + ".png")).string(), s, gray);
  }
  for (size_t i = 0; i < val.size(); ++i) {
    cv::Mat s = (val[i] != 0) / 255;
    data::write_label_png((root / "SaliencyMap" / ("va" + std::to_string(i) + ".png")).string(), s, gray);
  }
}

/// The dataset section of the tiny experiment (written by write_tiny_dataset at `root`).
inline data::DatasetOptions tiny_dataset_config(const fs::path& root) {
  data::DatasetOptions c;
  c.name = "folder";
  c.root = root.string();
  c.num_classes = 5;
  return c;
}

inline std::string tiny_config_yaml(const std::string& root, const std::string& out, int iterations) {
  return fmt::format(R"(name: tiny
seed: 3
threads: 1
output_dir: {}
methods: [finetune]
dataset: {{name: folder, root: {}, num_classes: 5, train_split: train, val_split: val, test_split: val}}
augment: {{crop_size: 32, scale_min: 0.8, scale_max: 1.2}}
scenario: {{steps: [[0, 1, 2], [3, 4]], mode: overlap, protocol: plop}}
model: {{name: fast_scnn}}
optim: {{lr: 0.01}}
train: {{batch_size: 4, iterations: {}, workers: 1, log_every: 2}}
eval: {{batch_size: 4}}
)",
                     out, root, iterations);
}

inline config::ExperimentConfig tiny_config(const std::string& root, const std::string& out, int iterations) {
  config::ExperimentConfig c;
  c.name = "tiny";
  c.seed = 3;
  c.output_dir = out;
  c.dataset.name = "folder";
  c.dataset.root = root;
  c.dataset.num_classes = 5;
  c.dataset.val_split = c.dataset.test_split = "val";
  c.augment.crop_size = 32;
  c.augment.scale_min = 0.8;
  c.augment.scale_max = 1.2;
  c.scenario.steps = {{0, 1, 2}, {3, 4}};
  c.train.batch_size = 4;
  c.train.iterations = iterations;
  c.train.workers = 1;
  c.train.log_every = 2;
  c.eval.batch_size = 4;
  return c;
}

/// The tiny dataset written under dir/data and an experiment on it that writes under dir/run.
inline config::ExperimentConfig tiny_experiment(const fs::path& dir, int iterations, const std::string& run = "run") {
  write_tiny_dataset(dir / "data");
  return tiny_config((dir / "data").string(), (dir / run).string(), iterations);
}

/// Whether Debian's dataset-fashion-mnist is installed (the FMNIST-Scenes tests skip without it).
inline bool have_fmnist() { return fs::exists(data::fmnist::default_fmnist_dir() + "/t10k-images-idx3-ubyte.gz"); }

/// FMNIST-Scenes at 48 x 48 under `dir`: `train` training frames in sequences of `frames`
/// (1: still scenes), 4 val and 4 test, generator seed `seed`. Needs dataset-fashion-mnist.
inline void write_fmnist_scenes(const fs::path& dir, int train, int frames, uint64_t seed) {
  data::fmnist::GenerateOptions g;
  g.out_dir = dir.string();
  g.train = train;
  g.val = g.test = 4;
  g.frames_per_sequence = frames;
  g.scene.width = g.scene.height = 48;
  g.seed = seed;
  CSEG_CHECK(data::fmnist::generate_scenes(g), "test data: FMNIST-Scenes could not be written to {}", dir.string());
}

/// Two FMNIST-Scenes environments under `dir` and a domain scenario over them: `a` still scenes,
/// labelled; `b` video (sequences of 4 frames), unlabelled; 8 training frames each, 2 iterations
/// per step, every pixel given a pseudo-label (threshold 0). Runs write under dir/run.
inline config::ExperimentConfig fmnist_video_domain(const fs::path& dir) {
  write_fmnist_scenes(dir / "a", 8, 1, 1);
  write_fmnist_scenes(dir / "b", 8, 4, 2);
  auto c = tiny_config("", (dir / "run").string(), 2);
  c.dataset = data::DatasetOptions{};
  c.dataset.name = "fmnist_scenes";
  c.dataset.test_split = "test";
  c.augment.crop_size = 48;
  c.scenario.type = "domain";
  c.scenario.steps.clear();
  c.scenario.environments = {{"a", (dir / "a").string(), true, {}}, {"b", (dir / "b").string(), false, {}}};
  c.adaptation.threshold = 0;
  return c;
}

}  // namespace cseg::test
