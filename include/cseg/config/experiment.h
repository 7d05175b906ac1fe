#pragma once
/// Typed experiment configuration. Defaults live here, in the declarations; a YAML file only
/// states what differs. See configs/base/*.yaml for every key with a comment.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "cseg/data/options.h"
#include "cseg/losses/options.h"
#include "cseg/models/options.h"

namespace cseg::config {

class ConfigTree;

/// The dataset and augmentation options are the data layer's own (data/options.h): config
/// parses YAML into them, data never includes config.
using DatasetConfig = data::DatasetOptions;
using AugmentConfig = data::AugmentOptions;

/// One environment of a domain-incremental scenario (a step): its own data, in the layout of
/// `dataset.name` under `root`, labelled or not.
struct EnvironmentConfig {
  std::string name;
  std::string root;
  bool labelled = true;  ///< false: its training labels are never read; it is learnt from pseudo-labels
  /// Scenes of the environment (hypersim, scannet): overrides dataset.scenes for this step, so
  /// environments can share one dataset root.
  std::vector<std::string> scenes;
};

struct ScenarioConfig {
  /// class: steps add classes (task, steps, order below); domain: steps are environments with one
  /// fixed label space (`environments`), evaluated on every environment after each step.
  std::string type = "class";
  std::vector<EnvironmentConfig> environments;  ///< domain: in step order (the mapping's order)
  // (The key scenario.city_task: 11-5 | 11-1 | 1-1 fills `environments` with PLOP's Cityscapes
  // city tasks, each environment some cities of dataset.root.)
  std::string task = "offline";         ///< a named table (15-1, 100-50, ...) or any a-b / a-b-c spec
  std::string mode = "overlap";         ///< overlap | disjoint | sequential
  std::string protocol = "plop";        ///< mib | mibv2 | sdr | plop | cssegmentation | continuum | ssul
  std::vector<int> order;               ///< custom class order (raw ids, 0 first); empty = natural
  std::vector<std::vector<int>> steps;  ///< explicit steps (raw ids), overrides `task` when given
};

using ModelConfig = models::ModelOptions;  ///< cseg/models/options.h

struct OptimConfig {
  double lr = 0.01;           ///< encoder learning rate at step 0
  double lr_next = -1;        ///< learning rate for steps > 0 (-1: same as lr)
  double head_lr_mult = 1.0;  ///< decoder/head learning rate = lr * head_lr_mult
  double momentum = 0.9;
  bool nesterov = false;
  double weight_decay = 1e-4;     ///< not applied to biases and normalisation layers
  std::string schedule = "poly";  ///< poly | constant
  double power = 0.9;
  int warmup_iters = 0;  ///< linear warm-up from 0 over this many iterations
};

using LossConfig = losses::LossOptions;  ///< cseg/losses/options.h

struct TrainConfig {
  int batch_size = 8;
  int epochs = 0;           ///< per step; exactly one of epochs, iterations,
  int iterations = 0;       ///< steps_per_class must be > 0
  int steps_per_class = 0;  ///< BACS: iterations = steps_per_class * new classes
  /// Data-parallel runs: BatchNorm layers normalise with the global batch's statistics (as
  /// torch.nn.SyncBatchNorm) instead of each process's share.
  bool sync_bn = false;
  /// fp32, or bf16: the forward pass under bfloat16 autocast (core/precision.h); weights and
  /// optimizer stay float32. Evaluation always runs in float32.
  std::string precision = "fp32";
  double first_step_factor = 1.0;  ///< step 0's budget = this x the budget above (a base model
                                   ///< from scratch needs more than an increment)
  int workers = 0;                 ///< loader threads; 0 = load in the training thread.
                                   ///< On 2 cores a loader thread beside LibTorch's OpenMP
                                   ///< threads costs 2.4x (bench/README.md): use >= 1 only
                                   ///< where cores are spare.
  int prefetch = 4;                ///< batches prepared ahead
  /// An iteration whose loss or gradients are not finite is never applied (the weights and the
  /// last checkpoint stay sound). stop: end the run with an error naming the iteration; skip:
  /// leave the iteration out, count it (results.json: skipped_nonfinite) and go on. fp16 runs
  /// skip overflowing steps through their loss scaler either way.
  std::string nonfinite = "stop";
  /// Checkpoints within an epoch (step<k>_last.pt, atomically, as at each epoch's end), so a
  /// killed run loses at most this much: every n iterations and/or every m minutes (0: off). A
  /// resumed run continues at the next batch of the epoch and retraces an uninterrupted one.
  int checkpoint_every = 0;
  double checkpoint_minutes = 0;
  bool debug = false;  ///< a few iterations per epoch, to check a config quickly
  int debug_iterations = 3;
  /// A folder of step-0 models shared by runs (a suite sets it): a method whose step 0 is
  /// fine-tuning (Method::first_step_is_finetuning), and any method for its own identical step 0,
  /// takes the model an identical earlier step 0 left there (same data, labels, model, weights,
  /// optimiser, budget and seed; keyed by their hash) instead of training it. "" = off.
  std::string shared_step0;
  int start_step = 0;           ///< begin the sequence here ...
  std::string init_checkpoint;  ///< ... from this step checkpoint (steps < start_step)
  int log_every = 20;           ///< iterations between log lines when not on a terminal
};

struct EvalConfig {
  int batch_size = 1;     ///< images of different sizes are padded with 255
  int val_every = 0;      ///< validate every n epochs (0: never); best kept by mIoU
  bool use_best = false;  ///< continue from the best validation checkpoint
};

/// The new-environment detector (adaptation/novelty.h): `adaptation.detector`.
struct ChangeDetectorOptions {
  int window = 30;         ///< frames of the current environment the baseline is computed over
  int min_history = 8;     ///< frames needed before anything is flagged
  double sigmas = 4.0;     ///< a frame is unusual above mean + sigmas * std of the baseline ...
  double min_rise = 0.03;  ///< ... and at least this far above the mean (noise-free baselines)
  int patience = 3;        ///< consecutive unusual frames that make a change (one blurred frame does not)
};

/// How unlabelled environments are learnt: from the teacher (the model as the previous step
/// ended, frozen) on each training batch.
struct AdaptationConfig {
  std::string pseudo_labels = "hard";  ///< hard: argmax where the teacher is confident | soft: its probabilities
  double threshold = 0.9;              ///< hard: pixels whose top softmax score is below are ignored
  double class_fraction = 0;           ///< hard: keep each predicted class's most confident share anyway (CBST)
  double temperature = 1.0;            ///< soft: softmax temperature of the teacher's targets
  /// Cross-consistency: the teacher labels the average of its predictions on the image and on its
  /// mirror image, so a pseudo-label must hold under a flip.
  bool teacher_flip = false;
  /// Cross-consistency: the student learns the clean image's pseudo-labels from a photometrically
  /// perturbed copy (brightness, contrast, colour gains drawn within 1 +- this, and sensor noise),
  /// so its prediction must not depend on the light. 0 = off.
  double student_jitter = 0;
  /// Cross-consistency under scale: the student sees the batch resized by a factor drawn per batch
  /// in [1 - this, 1 + this] and its logits are resized back to the pseudo-labels. 0 = off.
  double student_scale = 0;
  /// Temporal consistency for video environments (Dataset::sequences, e.g. FMNIST-Scenes
  /// --frames): before the step, every frame's hard pseudo-label is computed from the teacher's
  /// prediction averaged with the next frame's, brought back by DIS optical flow where forward
  /// and backward flow agree (adaptation/temporal.h). Hard pseudo-labels only.
  bool temporal = false;
  /// Label each whole frame once before the step and keep those hard pseudo-labels for all of the
  /// step's passes (crops and flips cut from them), as `temporal` does but without the fusion with
  /// the next frame; any environment. Off (the default): the teacher labels every augmented batch
  /// afresh. Separates the two things `temporal` changes (docs/domain_incremental.md).
  bool fixed_labels = false;
  /// Weight of the student's own temporal consistency on video environments: its prediction for
  /// each frame is pulled towards its prediction for the next frame, warped back by DIS flow
  /// where the flow holds (adaptation/consistency.h; one extra forward pass without gradient).
  /// 0 = off.
  double temporal_consistency = 0;
  /// Weight of depth-edge consistency (environments with depth maps): neighbouring pixels on one
  /// surface get the same prediction; classes change at depth edges. 0 = off.
  double depth_edges = 0;
  /// The relative depth step that makes an edge: |ln d1 - ln d2| at or above it.
  double depth_edge_step = 0.05;
  /// Benchmarks only: before each unlabelled step, score the teacher's pseudo-labels on the
  /// environment's training frames against their masks (which must then exist). The masks are
  /// read for this score alone, never for training.
  bool score_pseudo_labels = false;
  /// Detect -> adapt: an unlabelled step starts where the new-environment detector notices the
  /// room changed. The model as it ended the previous step is run over the last `detect_history`
  /// training frames of the previous environment, then over this environment's training frames
  /// in file order (a video's order); the step trains on the frames from the detection on, or
  /// not at all when the arrival goes unnoticed. results.json records where it was noticed, the
  /// delay and the false alarms (adaptation/novelty.h: locate_arrival).
  bool detect = false;
  int detect_history = 100;
  /// What the detector watches per frame: `uncertainty` (the mean normalised entropy of the
  /// prediction: rises in a room the model does not know, but self-training lowers it
  /// everywhere) or `features` (how far the statistics of the frame's `detect_tap` map, each
  /// channel's mean and standard deviation over the image, lie from the known room's: a z-score
  /// over them, either direction).
  std::string detect_signal = "uncertainty";
  /// detect_signal features: the model's feature map whose statistics are compared (a name of
  /// the model's taps, e.g. Fast-SCNN's learning_to_downsample: low-level appearance).
  std::string detect_tap = "encoder";
  ChangeDetectorOptions detector;  ///< adaptation.detector: window, min_history, sigmas, min_rise, patience
};

struct ExperimentConfig {
  std::string name = "experiment";
  uint64_t seed = 0;
  int threads = 0;  ///< 0: all cores
  /// Where training and evaluation run: cpu, cuda or cuda:N (a CUDA build of LibTorch; data
  /// loading stays on the CPU). Checked when the config is read (core/device.h).
  std::string device = "cpu";
  std::string output_dir;  ///< run folder; default ${output_root}/<name>
  std::vector<std::string> methods{"finetune"};
  /// Per-method option overrides, `method_options: {mib: {kd_weight: 100}}`: raw scalar strings,
  /// typed and checked by each method (methods/options.h), so unknown keys fail by name.
  std::map<std::string, std::map<std::string, std::string>> method_options;
  DatasetConfig dataset;
  AugmentConfig augment;
  ScenarioConfig scenario;
  ModelConfig model;
  OptimConfig optim;
  LossConfig loss;
  TrainConfig train;
  EvalConfig eval;
  AdaptationConfig adaptation;
};

/// Reads every section strictly: unknown keys and wrong types throw, naming key and file. Keys
/// that are valid but configure a component the run does not use (method_options of a method not
/// in `methods`, dataset.label_map outside the folder loader, dataset.saliency_dir for a loader
/// without saliency, adaptation outside domain scenarios) are a warning naming key and file; with
/// the top-level `strict: true` they are an error.
ExperimentConfig parse_experiment(const ConfigTree& tree);
/// Only the `model` section (for commands that need no dataset, e.g. `cseg model-info`).
ModelConfig parse_model_section(const ConfigTree& tree);

}  // namespace cseg::config
