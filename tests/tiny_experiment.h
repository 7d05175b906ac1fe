#pragma once
// A tiny 5-class experiment (folder format, 32x32 images) for trainer and CLI tests:
// step 0 = {0, 1, 2}, step 1 = {3, 4}.
#include "cseg/config/experiment.h"
#include "fixtures.h"

namespace cseg::test {

inline void write_tiny_dataset(const fs::path& root) {
  std::vector<cv::Mat> train, val;
  for (int i = 0; i < 12; ++i) {
    int a = 1 + i % 4, b = 1 + (i + 1) % 4;
    train.push_back(label_map(32, 32, {{a, 2 + i % 5, 3, 12, 12}, {b, 16, 14 + i % 3, 12, 12}}));
  }
  for (int i = 0; i < 4; ++i) val.push_back(label_map(32, 32, {{1 + i, 4, 4, 12, 12}, {1 + (i + 2) % 4, 18, 16, 10, 10}}));
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
inline config::DatasetConfig tiny_dataset_config(const fs::path& root) {
  config::DatasetConfig c;
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

}  // namespace cseg::test
