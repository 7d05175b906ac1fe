#pragma once
/// A model's options, read by the model registry (make_model in segmenter.h). The experiment config
/// (config/experiment.h, key `model`) parses YAML into them; defaults live here.
#include <string>
#include <vector>

namespace cseg::models {

struct ModelOptions {
  std::string name = "fast_scnn";      ///< fast_scnn | deeplabv3 | deeplabv3plus | unet | lraspp_mobilenet_v3_large
  bool aux = false;                    ///< auxiliary (deep supervision) head where the model has one
  double dropout = 0.1;                ///< before the heads (fast_scnn, unet; not lraspp, as torchvision)
  std::string norm = "bn";             ///< bn | frozen_bn | bn_leaky (BN + LeakyReLU(0.01), in-place ABN)
  std::string backbone = "resnet101";  ///< deeplab: resnet18 | resnet34 | resnet50 | resnet101 | resnet152
  int output_stride = 16;              ///< deeplab: 16 or 8
  std::vector<int> aspp_rates;  ///< deeplab: empty = 6,12,18 (stride 16) or 12,24,36 (stride 8; 12,24,32 for mib)
  /// deeplabv3: torchvision | mib (the MiB/PLOP/SDR codebases' DeepLabV3, whose checkpoints then
  /// load: every block of a dilated stage dilated alike, a head without the 3x3 conv; docs/models.md)
  std::string layout = "torchvision";
  /// layout mib, at evaluation: the ASPP image-pooling window in feature cells (MiB's --pooling);
  /// 0 = the whole map as in training. At MiB's 512x512 crops (32x32 cells) both are the same.
  int mib_eval_pooling = 32;
  int unet_channels = 64;                    ///< unet: width of the first level
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

/// The names make_model accepts, from the registry table in models/registry.cpp.
std::vector<std::string> model_names();

}  // namespace cseg::models
