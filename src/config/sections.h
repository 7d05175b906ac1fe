#pragma once
// Readers of the config sections that more than one kind of file has (experiments and
// pretraining files): each reads its keys strictly and checks their values. Private to config/.
#include "cseg/config/config.h"
#include "cseg/config/experiment.h"

namespace cseg::config {

void read_augment(Section s, AugmentConfig& c);
void read_model(Section s, ModelConfig& c);
void read_optim(Section s, OptimConfig& c);

}  // namespace cseg::config
