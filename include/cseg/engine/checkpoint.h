#pragma once
/// Checkpoints: model, optimizer, method state, counters and RNG state in one LibTorch archive,
/// written atomically (temporary file + rename) so a kill never leaves a half-written file.
#include <optional>
#include <string>
#include <vector>

#include "cseg/core/grad_scaler.h"
#include "cseg/methods/method.h"
#include "cseg/models/segmenter.h"

namespace cseg::engine {

struct TrainState {
  int step = 0;
  int epoch = 0;                                       ///< epochs completed in this step
  int64_t iteration = 0;                               ///< iterations done in this step
  double best_val = -1;                                ///< best validation mIoU in this step (-1: none)
  std::vector<int> heads;                              ///< classes per head, to rebuild the model before loading
  std::optional<core::GradScaler::State> loss_scaler;  ///< fp16 training's loss scale (absent otherwise)
};

/// Writes `archive` to `path` atomically and checked (core::replace_atomically): a failed write
/// (a full disk) is an error naming `path`, which keeps its previous content.
void save_archive(torch::serialize::OutputArchive& archive, const std::string& path);

void save_checkpoint(const std::string& path, models::Segmenter& model, torch::optim::Optimizer* optimizer,
                     const methods::Method* method, const TrainState& state);

/// Reads only the counters and head sizes (to rebuild the model first).
TrainState read_checkpoint_state(const std::string& path);

/// Loads into an already-built model (heads must match), optimizer and method when given, and
/// restores the RNG state. Throws naming the file if it is not a cseg checkpoint.
TrainState load_checkpoint(const std::string& path, models::Segmenter& model, torch::optim::Optimizer* optimizer,
                           methods::Method* method);

}  // namespace cseg::engine
