// EWC, PI and RW (methods/regularizers.h): the penalty and its normalisation, and RW's score
// anchor across a resume in the middle of a step.
#include <gtest/gtest.h>

#include "../fixtures.h"
#include "../tiny_experiment.h"
#include "cseg/engine/checkpoint.h"
#include "cseg/engine/experiment_data.h"
#include "cseg/engine/iteration.h"
#include "cseg/engine/trainer.h"
#include "cseg/methods/regularizers.h"
#include "cseg/models/fast_scnn.h"

using namespace cseg;
using namespace cseg::methods;

TEST(ContinualLosses, RegularizerPenaltyAndNormalisation) {
  models::FastScnn model(models::FastScnnOptions{{3}, false, 0.0});
  ParameterRegularizer::TensorMap old, importance;
  for (const auto& p : model.named_parameters()) {
    old[p.key()] = p.value().detach().clone();
    importance[p.key()] = torch::ones_like(p.value());
  }
  // At the old parameters the penalty is 0.
  EXPECT_EQ(ParameterRegularizer::penalty(model, importance, old).item<double>(), 0.0);
  // Moving one weight by 1 and another by 2 with importances 1 and 0.5: 1 + 0.5 * 4 = 3.
  const std::string a = "classifier.heads.0.bias";
  auto moved = old;
  moved[a] = old[a].clone();
  moved[a][0] -= 1.0;
  moved[a][1] -= 2.0;
  importance[a] = torch::tensor({1.f, 0.5f, 0.f});
  EXPECT_NEAR(ParameterRegularizer::penalty(model, importance, moved).item<double>(), 3.0, 1e-5);
  // Min-max normalisation over all tensors together.
  auto n = ParameterRegularizer::normalized({{"x", torch::tensor({2.f, 4.f})}, {"y", torch::tensor({6.f})}});
  EXPECT_NEAR(n["x"][0].item<float>(), 0.0, 1e-6);
  EXPECT_NEAR(n["x"][1].item<float>(), 0.5, 1e-6);
  EXPECT_NEAR(n["y"][0].item<float>(), 1.0, 1e-6);
}

// RW's path integral is measured from an anchor that moves every `score_every` updates; a resume
// in the middle of a step must restore it (it used to restart from the step's first weights).
TEST(ContinualMethods, RwResumesItsScoreAnchorMidStep) {
  test::TempDir d;
  test::write_tiny_dataset(d / "data");
  auto cfg = test::tiny_config((d / "data").string(), (d / "run").string(), 3);
  auto data = engine::open_experiment_data(cfg, "", 1);
  auto build = [&] { return engine::build_model_for_step(cfg, *data.scenario, 0); };
  const auto copy = [](models::Segmenter& from, models::Segmenter& to) {
    torch::NoGradGuard no_grad;
    auto dst = to.named_parameters();
    for (const auto& p : from.named_parameters()) dst[p.key()].copy_(p.value());
  };
  auto straight = build(), start = build(), resumed_model = build();
  copy(*straight, *start);  // the step's first weights
  torch::manual_seed(3);
  const auto input = torch::randn({2, 3, 32, 32});
  const auto update = [&](ParameterRegularizer& rw, StepContext& ctx) {
    torch::optim::SGD sgd(ctx.model->parameters(), torch::optim::SGDOptions(0.1));  // stateless
    torch::manual_seed(7);                                                          // the same dropout masks
    sgd.zero_grad();
    ctx.model->forward(input).logits.pow(2).mean().backward();
    rw.after_backward(ctx);
    sgd.step();
    rw.after_optimizer_step(ctx);
  };
  const auto scores = [&](const ParameterRegularizer& rw) {
    torch::serialize::OutputArchive out;
    rw.save(out);
    const auto file = (d / "rw.pt").string();
    out.save_to(file);
    torch::serialize::InputArchive in;
    in.load_from(file);
    std::vector<torch::Tensor> all;
    while (true) {
      torch::Tensor t;  // fresh each time: reading into a defined tensor overwrites its storage
      if (!in.try_read("score_" + std::to_string(all.size()), t)) break;
      all.push_back(t);
    }
    return all;
  };
  const Options options("rw", {{"score_every", "1"}});
  ParameterRegularizer first(ParameterRegularizer::Kind::RW, options);
  StepContext ctx;
  ctx.model = straight.get();
  first.on_step_begin(ctx);
  for (int i = 0; i < 3; ++i) update(first, ctx);
  torch::serialize::OutputArchive saved;  // the mid-step checkpoint's method state
  first.save(saved);
  saved.save_to((d / "mid.pt").string());
  copy(*straight, *resumed_model);  // and its weights
  // The resumed process, in the trainer's order: the method begins the step on the step's first
  // weights, then loads the mid-step state; training goes on from the mid-step weights.
  ParameterRegularizer resumed(ParameterRegularizer::Kind::RW, options);
  StepContext rctx;
  rctx.model = start.get();
  resumed.on_step_begin(rctx);
  torch::serialize::InputArchive mid;
  mid.load_from((d / "mid.pt").string());
  resumed.load(mid);
  rctx.model = resumed_model.get();
  update(first, ctx);
  update(resumed, rctx);
  const auto a = scores(first), b = scores(resumed);
  ASSERT_FALSE(a.empty());
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_TRUE(torch::equal(a[i], b[i])) << "score " << i << " max diff " << (a[i] - b[i]).abs().max().item<double>()
                                          << " of " << a[i].abs().max().item<double>();
}
