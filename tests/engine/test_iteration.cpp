// engine/optimizer.h (budget, schedule) and engine/iteration.h (one training iteration): the
// numbers derived by hand, and the order of the hooks as docs/architecture.md states it.
#include <gtest/gtest.h>

#include <cmath>

#include "../tiny_step.h"
#include "cseg/engine/iteration.h"
#include "cseg/engine/optimizer.h"
#include "cseg/models/segmenter.h"

namespace cseg {
namespace {

TEST(Optimizer, StepIterationsFollowTheBudgetKeys) {
  config::TrainConfig t;
  t.iterations = 40;
  EXPECT_EQ(engine::step_iterations(t, 1, 3, 17), 40);  // iterations wins over everything
  t.iterations = 0;
  t.steps_per_class = 25;
  EXPECT_EQ(engine::step_iterations(t, 1, 3, 17), 75);  // 25 x 3 new classes
  t.steps_per_class = 0;
  t.epochs = 2;
  EXPECT_EQ(engine::step_iterations(t, 1, 3, 17), 34);  // 2 epochs x 17 batches
  t.first_step_factor = 2.5;
  EXPECT_EQ(engine::step_iterations(t, 0, 3, 17), 85);  // step 0: 34 x 2.5
  EXPECT_EQ(engine::step_iterations(t, 1, 3, 17), 34);  // only step 0 is scaled
  t.first_step_factor = 0.01;
  EXPECT_EQ(engine::step_iterations(t, 0, 3, 17), 1);  // 0.34 rounds to 0: at least 1
  t.first_step_factor = 1.5;
  t.epochs = 1;
  EXPECT_EQ(engine::step_iterations(t, 0, 3, 5), 8);  // 7.5 rounds half away from zero
  t.debug = true;
  t.debug_iterations = 3;
  EXPECT_EQ(engine::step_iterations(t, 0, 3, 5), 3);  // train.debug caps it
}

TEST(Optimizer, LearningRateScheduleIsPolyTimesWarmUp) {
  config::OptimConfig o;
  o.lr = 0.01;
  o.lr_next = -1;
  EXPECT_DOUBLE_EQ(engine::step_learning_rate(o, 0), 0.01);
  EXPECT_DOUBLE_EQ(engine::step_learning_rate(o, 2), 0.01);  // no lr_next: the same
  o.lr_next = 0.002;
  EXPECT_DOUBLE_EQ(engine::step_learning_rate(o, 0), 0.01);
  EXPECT_DOUBLE_EQ(engine::step_learning_rate(o, 2), 0.002);
  o.schedule = "poly";
  o.power = 0.9;
  EXPECT_DOUBLE_EQ(engine::lr_factor(o, 0, 100), 1.0);
  EXPECT_NEAR(engine::lr_factor(o, 50, 100), 0.5358867312681466, 1e-12);  // 0.5^0.9
  EXPECT_DOUBLE_EQ(engine::lr_factor(o, 100, 100), 0.0);
  o.warmup_iters = 10;
  EXPECT_NEAR(engine::lr_factor(o, 4, 100), std::pow(0.96, 0.9) * 0.5, 1e-12);  // (4+1)/10 of the way up
  EXPECT_NEAR(engine::lr_factor(o, 10, 100), std::pow(0.9, 0.9), 1e-12);        // warm-up over
  o.schedule = "constant";
  EXPECT_DOUBLE_EQ(engine::lr_factor(o, 4, 100), 0.5);
  EXPECT_DOUBLE_EQ(engine::lr_factor(o, 60, 100), 1.0);
}

/// Records the order in which the iteration calls the hooks of a method and an adaptation.
struct HookLog {
  std::vector<std::string> calls;
};

class RecordingMethod : public methods::Method {
 public:
  explicit RecordingMethod(HookLog& log) : log_(log) {}
  std::string name() const override { return "recording"; }
  void before_forward(methods::StepContext&, Batch&) override { log_.calls.push_back("method.before_forward"); }
  torch::Tensor task_loss(methods::StepContext& ctx, const Batch& b, const models::ModelOutput& out) override {
    log_.calls.push_back("method.task_loss");
    return Method::task_loss(ctx, b, out);
  }
  void add_loss_terms(methods::StepContext&, const Batch&, const models::ModelOutput& out,
                      methods::LossTerms& terms) override {
    log_.calls.push_back("method.add_loss_terms");
    terms.emplace_back("method_term", out.logits.mean() * 0 + 0.25);
  }
  void after_backward(methods::StepContext&) override { log_.calls.push_back("method.after_backward"); }
  void after_optimizer_step(methods::StepContext&) override { log_.calls.push_back("method.after_optimizer_step"); }

 private:
  HookLog& log_;
};

class RecordingAdaptation : public adaptation::StepAdaptation {
 public:
  explicit RecordingAdaptation(HookLog& log) : log_(log) {}
  void prepare_batch(const methods::StepContext&, Batch&) override { log_.calls.push_back("adaptation.prepare_batch"); }
  models::ModelOutput forward(const methods::StepContext&, const torch::Tensor& images,
                              const std::function<models::ModelOutput(const torch::Tensor&)>& forward) override {
    log_.calls.push_back("adaptation.forward");
    return forward(images);
  }
  void add_loss_terms(const methods::StepContext&, const Batch&, const models::ModelOutput& out,
                      methods::LossTerms& terms) override {
    log_.calls.push_back("adaptation.add_loss_terms");
    terms.emplace_back("adaptation_term", out.logits.mean() * 0 + 0.5);
  }

 private:
  HookLog& log_;
};

using test::TinyStep;

TEST(TrainIteration, CallsTheHooksInTheDocumentedOrderAndSumsEveryTerm) {
  TinyStep s;
  HookLog log;
  RecordingMethod method(log);
  RecordingAdaptation adaptation(log);
  std::vector<double> lrs;
  auto optimizer = engine::make_step_optimizer(*s.model, s.cfg.optim, 0.01, lrs, {});
  engine::TrainIteration iteration(s.cfg, *s.model, method, adaptation, *optimizer, {});
  const auto before = s.model->parameters()[0].clone();
  const auto r = iteration.run(s.ctx, s.batch);
  const std::vector<std::string> expected{
      "adaptation.prepare_batch",  "method.before_forward", "adaptation.forward",    "method.task_loss",
      "adaptation.add_loss_terms", "method.add_loss_terms", "method.after_backward", "method.after_optimizer_step"};
  EXPECT_EQ(log.calls, expected);
  ASSERT_EQ(r.terms.size(), 3u);
  EXPECT_EQ(r.terms[0].first, s.cfg.loss.name);
  EXPECT_EQ(r.terms[1].first, "adaptation_term");
  EXPECT_EQ(r.terms[2].first, "method_term");
  EXPECT_NEAR(r.loss, r.terms[0].second.item<double>() + 0.75, 1e-5);
  EXPECT_TRUE(r.applied);
  EXPECT_FALSE(s.model->parameters()[0].equal(before));                          // the optimizer stepped
  for (const auto& p : s.model->parameters()) EXPECT_FALSE(p.grad().defined());  // gradients released
}

TEST(TrainIteration, ABatchWithoutLabelsHasAZeroTaskLoss) {
  // Every pixel ignored (no confident pseudo-label): cross-entropy would be 0/0.
  TinyStep s;
  s.batch.labels.fill_(255);
  HookLog log;
  RecordingMethod method(log);
  adaptation::StepAdaptation labelled;
  std::vector<double> lrs;
  auto optimizer = engine::make_step_optimizer(*s.model, s.cfg.optim, 0.01, lrs, {});
  engine::TrainIteration iteration(s.cfg, *s.model, method, labelled, *optimizer, {});
  const auto r = iteration.run(s.ctx, s.batch);
  EXPECT_EQ(std::count(log.calls.begin(), log.calls.end(), "method.task_loss"), 0);
  EXPECT_EQ(r.terms[0].second.item<double>(), 0.0);
  EXPECT_NEAR(r.loss, 0.25, 1e-6);  // the method's term alone
  EXPECT_TRUE(r.applied);
}

TEST(TrainIteration, ANonFiniteLossIsNotApplied) {
  TinyStep s;
  HookLog log;
  RecordingMethod method(log);
  struct Poison : adaptation::StepAdaptation {
    void add_loss_terms(const methods::StepContext&, const Batch&, const models::ModelOutput& out,
                        methods::LossTerms& terms) override {
      terms.emplace_back("poison", out.logits.mean() * std::numeric_limits<double>::infinity());
    }
  } poison;
  std::vector<double> lrs;
  auto optimizer = engine::make_step_optimizer(*s.model, s.cfg.optim, 0.01, lrs, {});
  engine::TrainIteration iteration(s.cfg, *s.model, method, poison, *optimizer, {});
  const auto before = s.model->parameters()[0].clone();
  const auto r = iteration.run(s.ctx, s.batch);
  EXPECT_FALSE(r.applied);
  EXPECT_FALSE(std::isfinite(r.loss));
  EXPECT_TRUE(s.model->parameters()[0].equal(before));
  EXPECT_EQ(std::count(log.calls.begin(), log.calls.end(), "method.after_backward"), 0);
}

}  // namespace
}  // namespace cseg
