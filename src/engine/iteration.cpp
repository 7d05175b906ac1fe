#include "cseg/engine/iteration.h"

#include <cmath>
#include <numeric>
#include <optional>

#include "cseg/core/device.h"
#include "cseg/core/precision.h"
#include "cseg/distributed/process_group.h"
#include "cseg/losses/losses.h"
#include "cseg/models/inference.h"

namespace cseg::engine {

std::shared_ptr<models::Segmenter> build_model_for_step(const config::ExperimentConfig& cfg,
                                                        const scenarios::Scenario& sc, int last_step, bool all_heads) {
  auto model = models::make_model(cfg.model, sc.classes_after(0));
  const int last = all_heads ? sc.num_steps() - 1 : last_step;
  for (int k = 1; k <= last; ++k) model->add_head(sc.classes_after(k) - sc.classes_after(k - 1));
  return model;
}

std::shared_ptr<models::Segmenter> ready_step_model(models::Segmenter& model, methods::StepContext& ctx, bool teacher,
                                                    bool features, const config::ModelConfig& cfg,
                                                    const torch::Device& device) {
  // The teacher: the model as it ended the previous step, copied before the new head is added.
  // It only predicts: readied as for inference (batch norms folded, channels-last; Fast-SCNN's
  // forward at 96²: 10.7 -> 7.5 ms, measured), with the maps the method reads.
  std::shared_ptr<models::Segmenter> old_model;
  if (ctx.step > 0 && teacher) old_model = models::inference_copy(model, features);
  const auto heads = model.head_sizes();
  if (std::accumulate(heads.begin(), heads.end(), 0) < ctx.num_classes) {  // (pre-allocated heads are all there)
    model.add_head(ctx.num_classes - ctx.num_old_classes);
    model.to(device);  // the new head is made on the CPU
  }
  // Intermediate maps only for the methods that read them: they cost memory while training.
  model.set_feature_taps(features);
  if (cfg.channels_last) models::to_channels_last(model);  // a new head, or a loaded model, comes NCHW
  ctx.model = &model;
  ctx.old_model = old_model.get();
  return old_model;
}

TrainIteration::TrainIteration(const config::ExperimentConfig& cfg, models::Segmenter& model, methods::Method& method,
                               adaptation::StepAdaptation& adaptation, torch::optim::Optimizer& optimizer,
                               Options options)
    : cfg_(cfg),
      model_(model),
      method_(method),
      adaptation_(adaptation),
      optimizer_(optimizer),
      options_(options),
      cuda_(core::parse_device(cfg.device).is_cuda()),
      trained_(model.parameters()) {
  for (const auto& p : method.parameters()) trained_.push_back(p);
}

IterationResult TrainIteration::run(methods::StepContext& ctx, Batch& batch) {
  adaptation_.prepare_batch(ctx, batch);
  std::optional<core::AutocastScope> autocast(std::in_place, cfg_.train.precision, cuda_);  // until backward
  method_.before_forward(ctx, batch);
  models::ModelOutput old_out;
  if (ctx.old_model) {
    torch::NoGradGuard no_grad;
    old_out = models::float_logits(ctx.old_model->forward(batch.images));
    ctx.old_output = &old_out;
  }
  const auto out = adaptation_.forward(ctx, batch.images,
                                       [&](const torch::Tensor& x) { return models::float_logits(model_.forward(x)); });
  IterationResult r;
  r.terms = loss_terms(ctx, batch, out);
  torch::Tensor loss = r.terms[0].second;
  for (size_t i = 1; i < r.terms.size(); ++i) loss = loss + r.terms[i].second;
  autocast.reset();
  r.loss = loss.item<double>();
  (options_.scaler ? options_.scaler->scale(loss) : loss).backward();
  if (options_.averager) options_.averager->average(trained_);
  r.applied = apply_update(method_, ctx, optimizer_, options_.scaler, trained_,
                           options_.in_process_group || std::isfinite(r.loss));
  release_gradients(optimizer_);  // the next backward writes fresh ones
  ctx.old_output = nullptr;
  return r;
}

methods::LossTerms TrainIteration::loss_terms(methods::StepContext& ctx, const Batch& batch,
                                              const models::ModelOutput& out) {
  const std::string task_name = method_.task_loss_name().empty() ? cfg_.loss.name : method_.task_loss_name();
  methods::LossTerms terms;
  // A batch whose pixels are all ignored (no confident pseudo-label, or soft targets without
  // replayed samples) has no task loss: cross-entropy would be 0/0.
  const bool has_labels = batch.labels.ne(255).any().item<bool>();
  const bool task_loss = has_labels || !method_.task_loss_needs_labels();
  terms.emplace_back(task_name, task_loss ? method_.task_loss(ctx, batch, out) : out.logits.sum() * 0);
  if (out.aux_logits.defined() && has_labels)
    terms.emplace_back("aux",
                       cfg_.loss.aux_weight * losses::segmentation_loss(cfg_.loss, out.aux_logits, batch.labels));
  adaptation_.add_loss_terms(ctx, batch, out, terms);
  method_.add_loss_terms(ctx, batch, out, terms);
  return terms;
}

bool apply_update(methods::Method& method, methods::StepContext& ctx, torch::optim::Optimizer& optimizer,
                  core::GradScaler* scaler, const std::vector<torch::Tensor>& trained, bool loss_finite) {
  bool finite;
  if (scaler) {
    finite = scaler->unscale(trained);  // gradients back to their true size; false on overflow
  } else {
    finite = loss_finite;
    for (const auto& p : trained)
      if (finite && p.grad().defined()) finite = torch::isfinite(p.grad()).all().item<bool>();
  }
  if (finite) {
    method.after_backward(ctx);
    optimizer.step();
  }
  if (scaler) scaler->update(finite);
  if (finite) method.after_optimizer_step(ctx);
  return finite;
}

void release_gradients(torch::optim::Optimizer& optimizer) {
  for (auto& group : optimizer.param_groups())
    for (auto& p : group.params()) p.mutable_grad().reset();
}

}  // namespace cseg::engine
