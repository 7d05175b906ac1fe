#pragma once
/// What a training run reports, and where it goes: the trainer tells a Recorder what happened
/// (an iteration logged, a validation, a step evaluated, the results changed) and the recorder
/// writes it (a logger interface, as Avalanche's and mmengine's loggers). The run folder's
/// recorder (make_run_recorder) writes metrics.jsonl, TensorBoard event files, the prediction
/// images and results.json with per_class_iou.csv; the base class writes nothing (the processes
/// of a data-parallel run other than rank 0).
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "cseg/engine/evaluator.h"

namespace cseg::engine {

/// One logged training iteration.
struct IterationRecord {
  int step = 0;
  int64_t iteration = 0;  ///< iterations done in the step, this one included
  int epoch = 0;
  double lr = 0;                                      ///< the first parameter group's (the encoder's)
  double loss = 0;                                    ///< the summed loss
  std::vector<std::pair<std::string, double>> terms;  ///< each named loss term
};

class Recorder {
 public:
  virtual ~Recorder() = default;
  /// Step `step` starts (or resumes) training.
  virtual void begin_step(int step) {}
  virtual void iteration(const IterationRecord& record) {}
  /// The validation mIoU after `epoch` epochs of `step`.
  virtual void validation(int step, int epoch, double miou) {}
  /// Step `step` was evaluated: its entry of results.json's "steps", and up to four test images
  /// with their truth and prediction (`grid.png` empty: none).
  virtual void step_evaluated(int step, const nlohmann::json& step_results, const EncodedImage& grid) {}
  /// The run's results changed (results.json's schema: docs/results.md).
  virtual void results(const nlohmann::json& results) {}
};

/// The run folder's recorder for `method`'s run in `run_dir`, whose classes are `class_names`
/// (step-label order):
///   metrics.jsonl           one line per logged iteration and per validation
///   tensorboard/step<k>/    lr, loss/total, loss/<term> per logged iteration
///   tensorboard/sequence/   test mIoU (all/old/new/hIoU), per-class IoU (scalars and a table),
///                           input | truth | prediction images, at x = step
///   predictions/step<k>.png the same images, for the HTML report
///   results.json, per_class_iou.csv (one row per step, the CSV PLOP writes)
/// Every file is written through checked writes (core/files.h); one thread uses it.
std::unique_ptr<Recorder> make_run_recorder(const std::string& run_dir, const std::string& method,
                                            std::vector<std::string> class_names);

}  // namespace cseg::engine
