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
  model.train_everything();  // step 0, or a run resumed into this step: everything trains first
  if (ctx.step == 0) return;
  const int heads = int(model.head_sizes().size());
  if (freeze_network_) {
    // Only heads train: this step's and the pre-allocated later ones, the old ones too unless
    // freeze_old_heads.
    std::vector<int> trained;
    for (int h = freeze_old_heads_ ? ctx.step : 0; h < heads; ++h) trained.push_back(h);
    model.train_only_heads(trained);
  } else if (freeze_old_heads_) {
    for (auto& p : model.named_parameters(true)) {
      const int head = models::head_index(model, p.key());
      if (head >= 0 && head < ctx.step) p.value().set_requires_grad(false);
    }
  }
}

}  // namespace cseg::methods
