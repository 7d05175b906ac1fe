#pragma once
/// Typed configuration of classification pretraining (`cseg pretrain`): a model's encoder trained
/// as an image classifier, the ImageNet step of the field at the scale of the data at hand.
/// Defaults live here; configs/pretrain/*.yaml state what differs.
#include <cstdint>
#include <string>
#include <vector>

#include "cseg/config/experiment.h"

namespace cseg::config {

struct PretrainDataConfig {
  /// fmnist: the Fashion-MNIST *train* photos, each drawn alone as FMNIST-Scenes draws its items
  /// (never the t10k photos that val/test scenes use); folder: a class-per-folder image tree,
  /// root/<class>/*.{jpg,jpeg,png,bmp} (ImageNet's train/ layout), classes in name order.
  std::string source = "fmnist";
  std::string root;       ///< fmnist: the IDX folder ("" = dataset-fashion-mnist's); folder: the tree
  int image_size = 64;    ///< square input side
  double held_out = 0.1;  ///< share of each class kept out of training for top-1 accuracy
  std::vector<double> mean{0.485, 0.456, 0.406};  ///< normalisation, as the segmentation runs use
  std::vector<double> std{0.229, 0.224, 0.225};
  // fmnist: how a photo is drawn (flip, colour and soft edge as in scenes).
  double min_scale = 1.4, max_scale = 2.2;  ///< item side = 28 px x scale (scenes: 1.4 .. 3.2 in 96 px)
  /// Background textures drawn from, each with a random base colour and strength (the scene
  /// generator's flat | gradient | blobs | stripes | checker).
  std::vector<std::string> textures{"flat", "blobs", "gradient"};
  // folder: random-resized crops: the shorter side scaled to image_size x [scale_min, scale_max].
  double scale_min = 1.0, scale_max = 1.3;
  bool hflip = true;
};

struct PretrainTrainConfig {
  int batch_size = 64;
  int epochs = 0;  ///< exactly one of epochs, iterations must be > 0
  int iterations = 0;
  int log_every = 50;
  int eval_every = 0;        ///< held-out top-1 every n iterations (0: at each epoch's end)
  int checkpoint_every = 0;  ///< a resumable checkpoint every n iterations (0: each epoch's end)
};

struct PretrainConfig {
  std::string name = "pretrain";
  uint64_t seed = 0;
  int threads = 0;  ///< 0: all cores
  std::string device = "cpu";
  /// Default: ${output_root}/pretrained/<name>-<hash>, the hash of everything that decides the
  /// weights (pretrain_hash): a changed recipe trains anew, an unchanged one is found again.
  std::string output_dir;
  ModelConfig model;  ///< the segmentation model whose encoder is trained
  PretrainDataConfig data;
  OptimConfig optim;
  PretrainTrainConfig train;
};

/// Reads a pretraining file strictly (unknown keys and wrong types throw, naming key and file).
PretrainConfig parse_pretrain(const ConfigTree& tree);

/// 16 hex digits identifying what decides the weights: model, data, optimiser, budget and seed
/// (not name, threads, device, output folder or logging).
std::string pretrain_hash(const PretrainConfig& c);

}  // namespace cseg::config
