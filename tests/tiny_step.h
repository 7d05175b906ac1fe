#pragma once
// One tiny Fast-SCNN step for unit tests of a training iteration and its hooks: the config, a
// model with `classes` classes, its StepContext, and a random batch of two 32x32 images with
// labels in 0..classes-1.
#include <memory>

#include "cseg/config/experiment.h"
#include "cseg/core/batch.h"
#include "cseg/methods/method.h"
#include "cseg/models/segmenter.h"

namespace cseg::test {

struct TinyStep {
  config::ExperimentConfig cfg;
  std::shared_ptr<models::Segmenter> model;
  methods::StepContext ctx;
  Batch batch;
  explicit TinyStep(int classes = 3, uint64_t seed = 0) {
    torch::manual_seed(seed);
    cfg.model.name = "fast_scnn";
    model = models::make_model(cfg.model, classes);
    ctx.num_classes = classes;
    ctx.config = &cfg;
    ctx.model = model.get();
    batch.images = torch::randn({2, 3, 32, 32});
    batch.labels = torch::randint(0, classes, {2, 32, 32}, torch::kLong);
  }
};

}  // namespace cseg::test
