#pragma once
/// Loading PyTorch weights into a cseg model, with a report of what did not fit.
///
/// Keys are matched by name (cseg's modules mirror torchvision, the Fast-SCNN reference and
/// milesial's UNet). Before matching, the loader:
///  - strips a `module.` prefix (checkpoints saved from DataParallel / DDP);
///  - maps the reference's single classifier conv onto cseg's per-step heads, splitting its rows
///    over the heads when their sizes add up (Segmenter::head_aliases);
///  - in backbone mode, adds the model's backbone prefix to bare ImageNet ResNet keys
///    (`conv1.weight` -> `backbone.conv1.weight`) and renames in-place-ABN ResNet keys
///    (the MiB/PLOP/SDR ImageNet weights: `mod1.conv1`, `mod2.block1.convs.conv1`, `proj_conv`)
///    to torchvision's;
///  - maps a whole MiB/PLOP/SDR DeepLabV3 (`body.*` as above, `head.*` -> `classifier.*`, its
///    step classifiers `cls.<k>` joined and split over the model's heads) onto a DeepLab of
///    layout mib;
///  - for files in in-place-ABN names, stores each norm scale as |w| + eps: InPlaceABN(Sync), the
///    norm those codebases train with by default, keeps the raw w and multiplies by |w| + eps in
///    its forward (LoadOptions::inplace_abn_scale, off for files trained with plain ABN).
#include <string>
#include <vector>

#include "cseg/models/segmenter.h"
#include "cseg/weights/torch_file.h"

namespace cseg::weights {

enum class LoadMode {
  full,             ///< every model tensor must come from the file and every file tensor be used
  backbone,         ///< only the backbone (Segmenter::backbone_prefixes); the rest stays as built
  skip_classifier,  ///< everything but the heads (a different class count)
};
LoadMode parse_load_mode(const std::string& name);  ///< full | backbone | skip_classifier

struct LoadOptions {
  LoadMode mode = LoadMode::full;
  bool strict = true;             ///< fail (and copy nothing) unless the report is empty
  bool inplace_abn_scale = true;  ///< files in in-place-ABN names: norm scale w -> |w| + 1e-5
};
/// model.pretrained_norm_act (iabn_sync | iabn | abn) -> whether to apply |w| + eps.
bool inplace_abn_scale_for(const std::string& norm_act);

struct LoadReport {
  std::string file;
  std::string found_at;                 ///< where the state dict was in the file
  std::vector<std::string> notes;       ///< key mappings applied
  int loaded = 0;                       ///< tensors copied into the model
  int ignored = 0;                      ///< file tensors outside the loaded part (by mode)
  std::vector<std::string> missing;     ///< model keys the file lacks
  std::vector<std::string> unexpected;  ///< file keys the model lacks
  std::vector<std::string> mismatched;  ///< "key: file [a, b] vs model [c, d]"
  bool ok() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  /// Multi-line human-readable report.
  std::string to_string() const;
};

/// Matches `tensors` against `model` and copies what fits. Nothing is copied if the report is
/// not ok() and `options.strict` is set (then it throws with the report).
LoadReport load_state_dict(models::Segmenter& model, NamedTensors tensors, const LoadOptions& options,
                           const std::string& file = "<memory>");

/// Reads a torch.save file (or a cseg checkpoint, whose model tensors are used) and loads it.
LoadReport load_weights(models::Segmenter& model, const std::string& path, const LoadOptions& options);

/// The named tensors of a weights file: a torch.save state dict or a cseg checkpoint's model.
NamedTensors read_weights(const std::string& path, std::string* found_at = nullptr);

}  // namespace cseg::weights
