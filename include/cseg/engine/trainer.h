#pragma once
/// The trainer: runs one method through every step of a scenario, evaluating after each step,
/// checkpointing every epoch (and within one, train.checkpoint_every), and resuming from the run
/// folder when started again. Its parts: a step's data (experiment_data.h), the model a step
/// trains and one iteration (iteration.h), the optimiser and schedule (optimizer.h), unlabelled
/// adaptation as a plugin of the step (adaptation/step_adaptation.h), what is written
/// (recorder.h), checkpoints (checkpoint.h), evaluation (evaluator.h).
///
/// Run folder (one per method):
///   config.yaml (written by the app), scenario.json, log.txt, metrics.jsonl (one line per
///   logged iteration and per evaluation), results.json (schema in docs/results.md),
///   per_class_iou.csv, checkpoints/step<k>.pt (end of step), step<k>_last.pt (end of the latest
///   epoch, removed when the step ends), step<k>_best.pt (best validation mIoU, when validating).
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cseg/config/experiment.h"
#include "cseg/engine/evaluator.h"
#include "cseg/engine/experiment_data.h"
#include "cseg/engine/iteration.h"
#include "cseg/methods/method.h"
#include "cseg/metrics/confusion.h"

namespace cseg::distributed {
class ProcessGroup;
}

namespace cseg::engine {

class Recorder;
struct StepRun;

class Trainer {
 public:
  /// With a process `group` of several processes, training is data-parallel: each process takes
  /// its share of every global batch (train.batch_size) and gradients are averaged before each
  /// optimizer step; only rank 0 writes the run folder (checkpoints, results, logs).
  /// References are held: cfg, data, method and group must outlive the trainer.
  Trainer(const config::ExperimentConfig& cfg, const ExperimentData& data, methods::Method& method, std::string run_dir,
          distributed::ProcessGroup* group = nullptr);
  ~Trainer();
  /// Trains the remaining steps and returns the results (also written to results.json).
  nlohmann::json run();

 private:
  /// What a step's training measured, for its entry in results.json.
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
    nlohmann::json pseudo_labels;   ///< unlabelled environments: how the labels were made (or null)
    nlohmann::json detection;       ///< adaptation.detect: where the arrival was noticed (or null)
    std::string shared_step0;       ///< the shared step-0 model this step took (train.shared_step0), "" if trained
    int64_t skipped_nonfinite = 0;  ///< iterations not applied for a non-finite loss (train.nonfinite: skip)
  };
  friend struct StepRun;

  // The run (trainer.cpp).
  /// Restores the finished steps from results.json; returns the first step to train.
  int restore_results();
  /// The model the first step to train starts from: a checkpoint, or built (and pretrained).
  void start_model(int first);
  /// The final model's cost (multiply-adds, latency) as results.json's "cost".
  void measure_cost();
  std::shared_ptr<models::Segmenter> build_model(int last_step) const;
  /// Rank 0 of a process group, or a single process: the one that writes the run folder.
  bool primary() const;
  std::string checkpoint(const std::string& name) const;

  // One step (trainer_step.cpp), in the order it runs.
  StepTiming train_step(int step);
  methods::StepContext step_context(int step) const;
  /// adaptation.detect: runs the detector over the previous environment's last frames and this
  /// one's, and keeps the frames from the detection on as the step's training data.
  void detect_arrival(StepRun& run);
  /// The step's last checkpoint (step<k>_last.pt), when a stopped run left one.
  void resume_step(StepRun& run);
  /// train.shared_step0: takes an identical earlier run's step 0, or locks it to store this one.
  void take_shared_step0(StepRun& run);
  /// Data-parallel: rank 0's weights to every process, gradient averaging, sync-BN.
  void join_processes(StepRun& run);
  void train_epochs(StepRun& run);
  /// One iteration on `batch`, its learning rate set, its loss checked and logged.
  void train_iteration(StepRun& run, Batch& batch);
  /// step<k>_last.pt (rank 0) with the loss scale, after an epoch or within one.
  void save_last_checkpoint(StepRun& run);
  /// After an epoch (eval.val_every): validation mIoU, the best model kept (step<k>_best.pt).
  void validate(StepRun& run);
  void finish_step(StepRun& run);
  /// What decides a step 0's trained model (train.shared_step0's key): 16 hex digits.
  std::string step0_key(const data::Dataset& dataset, const std::vector<size_t>& images,
                        const std::array<uint8_t, 256>& lut, int64_t iterations) const;

  // Evaluation and results (trainer_results.cpp).
  nlohmann::json evaluate_step(int step, const StepTiming& timing);
  /// Accuracy matrix, forgetting, BWT and avg from the finished steps.
  void summarize();
  /// One test set evaluated: its confusion matrix, the scores from it, its image count.
  struct Evaluation {
    metrics::ConfusionMatrix cm{1};
    metrics::SegmentationScores scores;
    size_t images = 0;
  };
  /// Domain scenarios: every environment's test set, in step order.
  std::vector<Evaluation> evaluate_environments();
  /// The first (up to) four test images of `step`, one row each: input | truth | prediction.
  EncodedImage prediction_grid(int step);
  /// [r, g, b] per step label, as results.json's class_colours.
  nlohmann::json class_colours() const;
  /// Evaluation options with the method's prediction rule over the first `classes` logits.
  EvalOptions method_eval_options(int classes);

  const config::ExperimentConfig& cfg_;
  const torch::Device device_;  ///< cfg_.device: the model, its teacher and each batch live there
  const ExperimentData& data_;
  methods::Method& method_;
  std::string run_dir_;
  std::shared_ptr<models::Segmenter> model_;
  nlohmann::json results_;
  std::unique_ptr<Recorder> recorder_;  ///< the run folder's (rank 0), or one that writes nothing
  distributed::ProcessGroup* group_ = nullptr;
};

}  // namespace cseg::engine
