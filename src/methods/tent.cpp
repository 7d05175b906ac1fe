#include "cseg/methods/tent.h"

#include "cseg/models/layers.h"

namespace cseg::methods {

Tent::Tent(Options o) { o.finish(); }

torch::Tensor Tent::mean_entropy(const torch::Tensor& logits) {
  const auto log_p = torch::log_softmax(logits.to(torch::kFloat), 1);
  return -(log_p.exp() * log_p).sum(1).mean();
}

int Tent::train_only_norm_affine(models::Segmenter& model) {
  for (auto& p : model.parameters()) p.set_requires_grad(false);
  int n = 0;
  for (const auto& m : model.modules(/*include_self=*/false))
    if (auto bn = std::dynamic_pointer_cast<models::BatchNorm2dImpl>(m); bn && !bn->folded)
      for (auto* t : {&bn->weight, &bn->bias})
        if (t->defined()) {
          t->set_requires_grad(true);
          ++n;
        }
  return n;
}

void Tent::on_step_begin(StepContext& ctx) {
  adapting_ = !ctx.labelled;
  ctx.model->train_everything();  // a labelled step, or the state a resumed run starts from
  if (!adapting_) return;
  CSEG_CHECK(train_only_norm_affine(*ctx.model) > 0,
             "tent: the model has no BatchNorm layer to adapt (model.norm: frozen_bn freezes them; use bn)");
}

torch::Tensor Tent::task_loss(StepContext& ctx, const Batch& batch, const models::ModelOutput& out) {
  if (!adapting_) return Method::task_loss(ctx, batch, out);
  return mean_entropy(out.logits);
}

void Tent::on_step_end(StepContext& ctx) {
  ctx.model->train_everything();
  adapting_ = false;
}

}  // namespace cseg::methods
