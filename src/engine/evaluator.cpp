#include "cseg/engine/evaluator.h"

#include "cseg/data/loader.h"
#include "cseg/models/predictions.h"

namespace cseg::engine {

EvalOptions eval_options(const config::ExperimentConfig& cfg) {
  EvalOptions o;
  o.batch_size = cfg.eval.batch_size;
  o.workers = cfg.train.workers;
  o.mean = cfg.augment.mean;
  o.std = cfg.augment.std;
  return o;
}

torch::Tensor seen_logits(const torch::Tensor& logits, int classes) {
  return logits.size(1) > classes ? logits.narrow(1, 0, classes) : logits;
}

metrics::ConfusionMatrix evaluate(models::Segmenter& model, const data::Dataset& dataset,
                                  const std::vector<size_t>& indices, const std::array<uint8_t, 256>& lut,
                                  const EvalOptions& options) {
  data::LoaderOptions lo;
  lo.batch_size = options.batch_size;
  lo.train = false;
  lo.workers = options.workers;
  lo.lut = lut;
  lo.augment.mean = options.mean;
  lo.augment.std = options.std;
  data::Loader loader(dataset, indices, lo);
  loader.start_epoch(0);
  const int classes = options.num_classes > 0 ? options.num_classes : model.num_classes();
  metrics::ConfusionMatrix cm(classes);
  model.eval();
  torch::NoGradGuard no_grad;
  const auto device = models::device_of(model);
  while (auto batch = loader.next()) {
    auto out = model.forward(batch->images.to(device));
    out.logits = seen_logits(out.logits, classes);
    auto pred = (options.predict ? options.predict(out) : models::predicted_classes(out.logits)).cpu();
    // Labels the model cannot know yet are ignored rather than counted as errors: a protocol that
    // keeps them maps them to 255 or 0 itself (scenario eval label maps).
    auto labels = batch->labels.masked_fill(batch->labels >= classes, 255);
    cm.update(pred, labels);
  }
  return cm;
}

}  // namespace cseg::engine
