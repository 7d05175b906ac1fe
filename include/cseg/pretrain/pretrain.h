#pragma once
/// Classification pretraining (`cseg pretrain`): a segmentation model's encoder trained as an
/// image classifier (encoder -> global average pooling -> one linear layer), the ImageNet step
/// that every continual-segmentation method starts from, at the scale of the data at hand.
///
/// A run folder (config::PretrainConfig::output_dir) holds config.yaml, log.txt, metrics.jsonl
/// (loss and learning rate every log_every iterations, held-out top-1 at each evaluation),
/// checkpoints/last.pt (model, classifier, optimizer, counters, RNG; written atomically at each
/// epoch's end and every checkpoint_every iterations), results.json and, written last,
/// encoder.pt: the encoder's tensors under the segmentation model's names, in a cseg checkpoint
/// that `model.pretrained` with `pretrained_mode: backbone` loads. A rerun of a finished folder
/// does nothing; an interrupted one resumes from last.pt and ends with the same weights.
#include <nlohmann/json.hpp>
#include <string>

#include "cseg/config/pretrain.h"

namespace cseg::pretrain {

/// The encoder weights file of a run folder.
std::string encoder_weights(const config::PretrainConfig& cfg);

/// Trains (or resumes, or finds finished) the run of `cfg`; returns its results.json.
nlohmann::json run_pretraining(const config::PretrainConfig& cfg);

/// The encoder weights of the pretraining file `path` (env file `env_path`, "" = defaults):
/// trained first when its folder has none. An exclusive lock on the folder keeps two processes
/// (the runs of a suite) from training the same encoder at once; the second waits and finds it.
std::string ensure_encoder(const std::string& path, const std::string& env_path);

}  // namespace cseg::pretrain
