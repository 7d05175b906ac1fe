#pragma once
/// The trainer: runs one method through every step of a scenario, evaluating after each step,
/// checkpointing every epoch, and resuming from the run folder when started again.
///
/// Run folder (one per method):
///   config.yaml (written by the app), scenario.json, log.txt, metrics.jsonl (one line per
///   logged iteration and per evaluation), results.json (schema in docs/results.md),
///   per_class_iou.csv, checkpoints/step<k>.pt (end of step), step<k>_last.pt (end of the latest
///   epoch, removed when the step ends), step<k>_best.pt (best validation mIoU, when validating).
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "cseg/config/experiment.h"
#include "cseg/core/grad_scaler.h"
#include "cseg/engine/evaluator.h"
#include "cseg/engine/experiment_data.h"
#include "cseg/metrics/confusion.h"
#include "cseg/methods/method.h"

namespace cseg::logging { class TensorBoardWriter; }
namespace cseg::distributed { class ProcessGroup; }

namespace cseg::engine {

class Trainer {
 public:
  /// With a process `group` of several processes, training is data-parallel: each process takes
  /// its share of every global batch (train.batch_size) and gradients are averaged before each
  /// optimizer step; only rank 0 writes the run folder (checkpoints, results, logs).
  Trainer(const config::ExperimentConfig& cfg, const ExperimentData& data, methods::Method& method,
          std::string run_dir, distributed::ProcessGroup* group = nullptr);
  ~Trainer();
  /// Trains the remaining steps and returns the results (also written to results.json).
  nlohmann::json run();

 private:
  struct StepTiming {
    double train_seconds = 0, data_wait_seconds = 0;
    int64_t images = 0, iterations = 0;
    int epochs = 0;
    /// Wall time of each iteration, loading included: its median is the step's speed without the
    /// machine's occasional stalls (the loss is read every iteration, so on a GPU this waits
    /// for the work).
    std::vector<double> iteration_seconds;
    double best_val = -1;
    size_t train_images = 0;
    nlohmann::json pseudo_labels;  ///< unlabelled video with adaptation.temporal: how the labels were made
    std::string shared_step0;      ///< the shared step-0 model this step took (train.shared_step0), "" if trained
    int64_t skipped_nonfinite = 0; ///< iterations not applied for a non-finite loss (train.nonfinite: skip)
  };
  /// What decides a step 0's trained model (train.shared_step0's key): 16 hex digits.
  std::string step0_key(const data::Dataset& dataset, const std::vector<size_t>& images,
                        const std::array<uint8_t, 256>& lut, int64_t iterations) const;
  std::shared_ptr<models::Segmenter> build_model(int last_step) const;
  StepTiming train_step(int step);
  /// Rank 0 of a process group, or a single process: the one that writes the run folder.
  bool primary() const;
  nlohmann::json evaluate_step(int step, const StepTiming& timing);
  /// Accuracy matrix, forgetting, BWT and avg from the finished steps.
  void summarize();
  void write_results();
  /// One test set evaluated: its confusion matrix, the scores from it, its image count.
  struct Evaluation {
    metrics::ConfusionMatrix cm{1};
    metrics::SegmentationScores scores;
    size_t images = 0;
  };
  /// Domain scenarios: every environment's test set, in step order.
  std::vector<Evaluation> evaluate_environments();
  /// Hard pseudo-labels of `teacher` for `images` (adaptation.threshold).
  torch::Tensor teacher_labels(models::Segmenter& teacher, const torch::Tensor& images) const;
  /// The teacher's logits for pseudo-labels (flip-averaged with adaptation.teacher_flip).
  torch::Tensor teacher_logits(models::Segmenter& teacher, const torch::Tensor& images) const;
  /// Pseudo-labels of environment k (one map per training frame) scored against its masks.
  nlohmann::json score_pseudo_labels(int k, const std::vector<cv::Mat>& maps) const;
  /// [r, g, b] per step label, as results.json's class_colours.
  nlohmann::json class_colours() const;
  /// TensorBoard run "sequence": test mIoU (all/old/new/hIoU), per-class IoU (scalars and a
  /// table), input | truth | prediction of a few test images, at x = step.
  void log_sequence(int step, const nlohmann::json& step_results);
  struct EncodedImage {
    std::string png;  ///< empty: nothing to show
    int height = 0, width = 0;
  };
  /// The first (up to) four test images of `step`, one row each: input | truth | prediction.
  EncodedImage prediction_grid(int step);
  std::string checkpoint(const std::string& name) const;
  /// Evaluation options with the method's predict (SSUL merges its unknown class).
  /// Evaluation options with the method's prediction rule over the first `classes` logits.
  EvalOptions method_eval_options(int classes);

  const config::ExperimentConfig& cfg_;
  const torch::Device device_;  ///< cfg_.device: the model, its teacher and each batch live there
  const ExperimentData& data_;
  methods::Method& method_;
  std::string run_dir_;
  std::shared_ptr<models::Segmenter> model_;
  nlohmann::json results_;
  std::unique_ptr<logging::TensorBoardWriter> tb_sequence_;
  distributed::ProcessGroup* group_ = nullptr;
};

/// Drops the optimizer's gradients instead of zeroing them (PyTorch 2's zero_grad(set_to_none=
/// True)): backward then writes fresh ones, and the forward pass in between runs without a copy
/// of the weights' size held for them. The trainer calls it after each optimizer step; the
/// benchmarks that train as it does, too.
void release_gradients(torch::optim::Optimizer& optimizer);

/// Turns one iteration's gradients into an update. With fp16 loss scaling (`scaler`) they are
/// unscaled first. An iteration whose gradients, or loss (`loss_finite`), are not finite is not
/// applied: the optimizer does not step and neither of the method's after_backward /
/// after_optimizer_step hooks runs (EWC, PI and RW would fold inf or NaN into their importance);
/// the scaler shrinks its scale. Returns whether the update was applied.
bool apply_update(methods::Method& method, methods::StepContext& ctx, torch::optim::Optimizer& optimizer,
                  core::GradScaler* scaler, const std::vector<torch::Tensor>& trained, bool loss_finite);

/// Builds a model with the heads of steps 0..last_step of `data`'s scenario, or of every step
/// when `all_heads` (a method that pre-allocates them, Method::preallocates_heads).
std::shared_ptr<models::Segmenter> build_model_for_step(const config::ExperimentConfig& cfg,
                                                        const scenarios::Scenario& scenario, int last_step,
                                                        bool all_heads = false);

}  // namespace cseg::engine
