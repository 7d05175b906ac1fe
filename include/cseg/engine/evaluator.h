#pragma once
/// Evaluation: a model over a set of images at full resolution -> confusion matrix.
#include <array>
#include <functional>
#include <string>
#include <vector>

#include "cseg/config/experiment.h"
#include "cseg/data/dataset.h"
#include "cseg/data/image_io.h"
#include "cseg/metrics/confusion.h"
#include "cseg/models/segmenter.h"

namespace cseg::engine {

struct EvalOptions {
  int batch_size = 1;
  int workers = 1;
  std::vector<double> mean{0.485, 0.456, 0.406}, std{0.229, 0.224, 0.225};
  /// Labels [N, H, W] from the model's output; default argmax of the logits (a method such as
  /// SSUL supplies its own, see Method::predict).
  std::function<torch::Tensor(const models::ModelOutput&)> predict;
  /// The classes seen so far: logits past them (heads pre-allocated for later steps) are
  /// dropped before predicting, and the confusion matrix has this size. 0: the model's count.
  int num_classes = 0;
};

/// The first `classes` channels of logits [N, C, H, W] (all of them when C <= classes).
torch::Tensor seen_logits(const torch::Tensor& logits, int classes);

/// The evaluation options an experiment implies (eval batch, loader workers, normalisation).
EvalOptions eval_options(const config::ExperimentConfig& cfg);

/// Predicts argmax over the model's classes (options.num_classes) for `indices` of `dataset`
/// (labels remapped by `lut`) and accumulates a confusion matrix of that many classes. Leaves the model in
/// eval mode; the caller restores train mode.
metrics::ConfusionMatrix evaluate(models::Segmenter& model, const data::Dataset& dataset,
                                  const std::vector<size_t>& indices, const std::array<uint8_t, 256>& lut,
                                  const EvalOptions& options);

/// Per image of `indices`, in their order: the mean softmax entropy of the model's first
/// options.num_classes logits, divided by log C (adaptation/novelty.h), the uncertainty the
/// new-environment detector watches. Leaves the model in eval mode, as evaluate does.
std::vector<double> frame_uncertainty(models::Segmenter& model, const data::Dataset& dataset,
                                      const std::vector<size_t>& indices, const EvalOptions& options);

/// Per image of `indices`, in their order: each channel's mean and standard deviation over the
/// image of the model's feature map `tap`, [n, 2C] (what adaptation.detect_signal: features
/// compares). Leaves the model in eval mode, its feature taps as they were.
torch::Tensor frame_features(models::Segmenter& model, const data::Dataset& dataset, const std::vector<size_t>& indices,
                             const EvalOptions& options, const std::string& tap);

/// A PNG in memory.
struct EncodedImage {
  std::string png;  ///< empty: nothing to show
  int height = 0, width = 0;
};

/// Up to four of `indices` of `dataset`, one row each: input | ground truth | prediction, the
/// labels in `palette`'s colours (options.predict and options.num_classes as in evaluate). Leaves
/// the model in eval mode, as evaluate does.
EncodedImage prediction_grid(models::Segmenter& model, const data::Dataset& dataset, std::vector<size_t> indices,
                             const std::array<uint8_t, 256>& lut, const EvalOptions& options,
                             const data::Palette& palette);

}  // namespace cseg::engine
