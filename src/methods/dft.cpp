#include "cseg/methods/dft.h"

namespace cseg::methods {

DFTStar::DFTStar(Options o)
    : freeze_network_(o.flag("freeze_network", true)),
      freeze_old_heads_(o.flag("freeze_old_heads", true)),
      preallocate_(o.flag("preallocate", true)) {
  o.finish();
}

void DFTStar::on_step_begin(StepContext& ctx) {
  auto& model = *ctx.model;
  model.train_heads_only(-1);  // step 0, or a run resumed into this step: everything trains again first
  if (ctx.step == 0) return;
  if (freeze_network_) {
    // Only heads train: the old ones too unless freeze_old_heads.
    model.train_heads_only(freeze_old_heads_ ? ctx.step : 0);
  } else if (freeze_old_heads_) {
    for (auto& p : model.named_parameters(true)) {
      const int head = models::head_index(model, p.key());
      if (head >= 0 && head < ctx.step) p.value().set_requires_grad(false);
    }
  }
}

}  // namespace cseg::methods
