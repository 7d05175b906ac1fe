#pragma once
/// The segmentation loss's options (losses.h). The experiment config (config/experiment.h, key
/// `loss`) parses YAML into them; defaults live here.
#include <string>
#include <vector>

namespace cseg::losses {

struct LossOptions {
  std::string name = "ce";            ///< ce | focal | dice | soft_iou | ohem
  std::vector<double> class_weights;  ///< per class (ce, focal, ohem); empty = uniform
  double focal_gamma = 2.0;
  double ohem_keep = 0.25;  ///< ohem: fraction of hardest labelled pixels kept
  double aux_weight = 0.4;  ///< weight of the auxiliary head's loss
};

/// The names segmentation_loss accepts, from the registry table in losses/losses.cpp.
std::vector<std::string> loss_names();

}  // namespace cseg::losses
