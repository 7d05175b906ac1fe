#pragma once
/// Typed experiment configuration. Defaults live here, in the declarations; a YAML file only
/// states what differs. See configs/base/*.yaml for every key with a comment.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace cseg::config {

class ConfigTree;

struct DatasetConfig {
  std::string name = "fmnist_scenes";  ///< voc | ade20k | cityscapes | folder | fmnist_scenes
  std::string root;                    ///< dataset root folder (use ${data_root} from the env file)
  std::string train_split = "train";   ///< split (list) names; VOC: train_aug, train, val, ...
  std::string val_split = "val";
  std::string test_split = "val";
  std::string cache_dir;               ///< filtered index lists; default <output_dir>/../.cache
  /// Saliency maps (<id>.png, > 0 = salient) for SSUL: "auto" = <root>/SaliencyMap when it
  /// exists (VOC layout, FMNIST-Scenes), "" = none, or a folder (relative to root).
  std::string saliency_dir = "auto";
  // Generic folder datasets only:
  int num_classes = 0;                 ///< classes including background 0
  std::vector<std::string> class_names;
  /// Names (when class_names is empty) and colours from a known label space: voc, ade20k,
  /// cityscapes, nyu40, fmnist_scenes. Empty: generic names in the VOC colours.
  std::string label_space;
  std::string image_dir = "images", mask_dir = "masks", image_ext = ".jpg", mask_ext = ".png";
  /// Folder datasets: a file mapping the masks' raw values to labels, one "raw label" pair per
  /// line (# comments); values it does not list are an error. E.g. COCO-Stuff's PNGs to NYU-40
  /// for pre-training an indoor model: configs/label_maps/coco_stuff_to_nyu40.txt.
  std::string label_map;
  /// hypersim, scannet: only these scenes (e.g. ai_001_001, scene0000_00); empty = all of the split.
  std::vector<std::string> scenes;
};

struct AugmentConfig {
  int crop_size = 512;                 ///< square training crop; padded with 255 (labels) / mean
  double scale_min = 0.5, scale_max = 2.0;
  bool hflip = true;
  std::vector<double> mean{0.485, 0.456, 0.406};  ///< ImageNet statistics, RGB in [0,1]
  std::vector<double> std{0.229, 0.224, 0.225};
};

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
  std::string task = "offline";        ///< a named table (15-1, 100-50, ...) or any a-b / a-b-c spec
  std::string mode = "overlap";        ///< overlap | disjoint | sequential
  std::string protocol = "plop";       ///< mib | mibv2 | sdr | plop | cssegmentation | continuum | ssul
  std::vector<int> order;              ///< custom class order (raw ids, 0 first); empty = natural
  std::vector<std::vector<int>> steps; ///< explicit steps (raw ids), overrides `task` when given
};

struct ModelConfig {
  std::string name = "fast_scnn";      ///< fast_scnn | deeplabv3 | deeplabv3plus | unet
  bool aux = false;                    ///< auxiliary (deep supervision) head where the model has one
  double dropout = 0.1;                ///< before the heads (fast_scnn, unet)
  std::string norm = "bn";             ///< bn | frozen_bn | bn_leaky (BN + LeakyReLU(0.01), in-place ABN)
  std::string backbone = "resnet101";  ///< deeplab: resnet18 | resnet34 | resnet50 | resnet101 | resnet152
  int output_stride = 16;              ///< deeplab: 16 or 8
  std::vector<int> aspp_rates;         ///< deeplab: empty = 6,12,18 (stride 16) or 12,24,36 (stride 8; 12,24,32 for mib)
  /// deeplabv3: torchvision | mib (the MiB/PLOP/SDR codebases' DeepLabV3, whose checkpoints then
  /// load: every block of a dilated stage dilated alike, a head without the 3x3 conv; docs/models.md)
  std::string layout = "torchvision";
  /// layout mib, at evaluation: the ASPP image-pooling window in feature cells (MiB's --pooling);
  /// 0 = the whole map as in training. At MiB's 512x512 crops (32x32 cells) both are the same.
  int mib_eval_pooling = 32;
  int unet_channels = 64;              ///< unet: width of the first level
  std::string unet_upsampling = "bilinear";  ///< unet: bilinear | transposed
  /// Initial weights (a torch.save file or a cseg checkpoint) loaded before step 0 trains.
  std::string pretrained;
  /// A pretraining file (configs/pretrain/*.yaml; a relative path is relative to the config file
  /// that names it, the command line's to the working folder): its encoder, trained once by
  /// `cseg pretrain` (or on first use) and found again by the file's hash under
  /// ${output_root}/pretrained/, is loaded in backbone mode. Excludes `pretrained`.
  std::string pretrain;
  std::string pretrained_mode = "full";  ///< full | backbone | skip_classifier
  bool pretrained_strict = true;         ///< fail when the load report is not empty
  /// How a file in in-place-ABN names (`mod1.conv1`, `body.*`/`head.*`) was trained, as the MiB
  /// codebases' --norm_act: iabn_sync / iabn (InPlaceABN scales by |w| + eps, applied on import)
  /// or abn (plain weights). Ignored for files in torchvision names.
  std::string pretrained_norm_act = "iabn_sync";
  /// Train with 4-D weights in channels-last (NHWC) order, so oneDNN runs the convolutions in its
  /// NHWC kernels. Off by default: LibTorch 1.13's channels-last batch-norm backward on CPU loses
  /// precision (up to ~5% relative error in input gradients against float64), so cseg's
  /// BatchNorm2d normalises such maps in NCHW while training, and the two layout conversions per
  /// layer make training slower than NCHW (bench/README.md); it pays with norm: frozen_bn.
  /// Inference always runs channels-last (models/inference.h), where batch norm is folded away.
  bool channels_last = false;
};

struct OptimConfig {
  double lr = 0.01;                    ///< encoder learning rate at step 0
  double lr_next = -1;                 ///< learning rate for steps > 0 (-1: same as lr)
  double head_lr_mult = 1.0;           ///< decoder/head learning rate = lr * head_lr_mult
  double momentum = 0.9;
  bool nesterov = false;
  double weight_decay = 1e-4;          ///< not applied to biases and normalisation layers
  std::string schedule = "poly";       ///< poly | constant
  double power = 0.9;
  int warmup_iters = 0;                ///< linear warm-up from 0 over this many iterations
};

struct LossConfig {
  std::string name = "ce";             ///< ce | focal | dice | soft_iou | ohem
  std::vector<double> class_weights;   ///< per class (ce, focal, ohem); empty = uniform
  double focal_gamma = 2.0;
  double ohem_keep = 0.25;             ///< ohem: fraction of hardest labelled pixels kept
  double aux_weight = 0.4;             ///< weight of the auxiliary head's loss
};

struct TrainConfig {
  int batch_size = 8;
  int epochs = 0;                      ///< per step; exactly one of epochs, iterations,
  int iterations = 0;                  ///< steps_per_class must be > 0
  int steps_per_class = 0;             ///< BACS: iterations = steps_per_class * new classes
  /// Data-parallel runs: BatchNorm layers normalise with the global batch's statistics (as
  /// torch.nn.SyncBatchNorm) instead of each process's share.
  bool sync_bn = false;
  /// fp32, or bf16: the forward pass under bfloat16 autocast (core/precision.h); weights and
  /// optimizer stay float32. Evaluation always runs in float32.
  std::string precision = "fp32";
  double first_step_factor = 1.0;      ///< step 0's budget = this x the budget above (a base model
                                       ///< from scratch needs more than an increment)
  int workers = 0;                     ///< loader threads; 0 = load in the training thread.
                                       ///< On 2 cores a loader thread beside LibTorch's OpenMP
                                       ///< threads costs 2.4x (bench/README.md): use >= 1 only
                                       ///< where cores are spare.
  int prefetch = 4;                    ///< batches prepared ahead
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
  bool debug = false;                  ///< a few iterations per epoch, to check a config quickly
  int debug_iterations = 3;
  /// A folder of step-0 models shared by runs (a suite sets it): a method whose step 0 is
  /// fine-tuning (Method::first_step_is_finetuning), and any method for its own identical step 0,
  /// takes the model an identical earlier step 0 left there (same data, labels, model, weights,
  /// optimiser, budget and seed; keyed by their hash) instead of training it. "" = off.
  std::string shared_step0;
  int start_step = 0;                  ///< begin the sequence here ...
  std::string init_checkpoint;         ///< ... from this step checkpoint (steps < start_step)
  int log_every = 20;                  ///< iterations between log lines when not on a terminal
};

struct EvalConfig {
  int batch_size = 1;                  ///< images of different sizes are padded with 255
  int val_every = 0;                   ///< validate every n epochs (0: never); best kept by mIoU
  bool use_best = false;               ///< continue from the best validation checkpoint
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
};

struct ExperimentConfig {
  std::string name = "experiment";
  uint64_t seed = 0;
  int threads = 0;                     ///< 0: all cores
  /// Where training and evaluation run: cpu, cuda or cuda:N (a CUDA build of LibTorch; data
  /// loading stays on the CPU). Checked when the config is read (core/device.h).
  std::string device = "cpu";
  std::string output_dir;              ///< run folder; default ${output_root}/<name>
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
