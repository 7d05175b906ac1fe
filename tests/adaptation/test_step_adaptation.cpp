// adaptation/step_adaptation.h: the plugin a labelled step gets does nothing; self-training
// labels batches with the teacher, keeps the soft-label loss to the environment's own samples,
// and rescales the student's view; an unlabelled step without a teacher is an error.
#include <gtest/gtest.h>

#include <set>

#include "../fixtures.h"
#include "../tiny_step.h"
#include "cseg/adaptation/pseudo_labels.h"
#include "cseg/adaptation/step_adaptation.h"
#include "cseg/models/segmenter.h"

namespace cseg {
namespace {

/// An unlabelled environment's step 1: the tiny model is the teacher, the masks are all 255.
struct Room : test::TinyStep {
  models::Segmenter* teacher;
  Room() : TinyStep(4, 1), teacher(model.get()) {
    model->eval();
    ctx.step = 1;
    ctx.old_model = teacher;
    batch.labels.fill_(255);
  }
  std::unique_ptr<adaptation::StepAdaptation> plugin(bool labelled) {
    return adaptation::make_step_adaptation(cfg, labelled, {"night", nullptr}, "test");
  }
};

TEST(StepAdaptation, ALabelledStepChangesNothing) {
  Room s;
  auto p = s.plugin(true);
  EXPECT_FALSE(p->needs_teacher());
  const auto images = s.batch.images.clone(), labels = s.batch.labels.clone();
  p->prepare_batch(s.ctx, s.batch);
  p->label_visited(s.ctx, s.batch);
  EXPECT_TRUE(s.batch.images.equal(images));
  EXPECT_TRUE(s.batch.labels.equal(labels));
  methods::LossTerms terms;
  p->add_loss_terms(s.ctx, s.batch, s.teacher->forward(s.batch.images), terms);
  EXPECT_TRUE(terms.empty());
  EXPECT_TRUE(p->stats().is_null());
}

TEST(StepAdaptation, SelfTrainingLabelsBatchesWithTheTeacher) {
  Room s;
  s.cfg.adaptation.threshold = 0.3;
  auto p = s.plugin(false);
  EXPECT_TRUE(p->needs_teacher());
  torch::Tensor expected;
  {
    torch::NoGradGuard no_grad;
    expected = adaptation::hard_pseudo_labels(s.teacher->forward(s.batch.images).logits, 0.3, 0);
  }
  Batch visited = s.batch;
  p->prepare_batch(s.ctx, s.batch);
  EXPECT_TRUE(s.batch.labels.equal(expected));
  p->label_visited(s.ctx, visited);  // what a replay buffer keeps: the same labels
  EXPECT_TRUE(visited.labels.equal(expected));
  methods::LossTerms terms;
  p->add_loss_terms(s.ctx, s.batch, s.teacher->forward(s.batch.images), terms);
  EXPECT_TRUE(terms.empty());  // hard labels go through the task loss
}

TEST(StepAdaptation, SoftTargetsTeachOnlyTheEnvironmentsOwnSamples) {
  Room s;
  s.cfg.adaptation.pseudo_labels = "soft";
  s.cfg.adaptation.temperature = 2.0;
  auto p = s.plugin(false);
  p->prepare_batch(s.ctx, s.batch);
  EXPECT_TRUE((s.batch.labels == 255).all().item<bool>());  // no hard labels
  // A method appends a replayed sample after prepare_batch: it gets no soft target.
  s.batch.images = torch::cat({s.batch.images, torch::randn({1, 3, 32, 32})});
  auto student = models::make_model(s.cfg.model, 4);
  const auto out = student->forward(s.batch.images);
  methods::LossTerms terms;
  p->add_loss_terms(s.ctx, s.batch, out, terms);
  ASSERT_EQ(terms.size(), 1u);
  EXPECT_EQ(terms[0].first, "soft_pseudo_labels");
  torch::Tensor targets;
  {
    torch::NoGradGuard no_grad;
    targets = s.teacher->forward(s.batch.images.slice(0, 0, 2)).logits;
  }
  const auto expected = adaptation::soft_pseudo_label_loss(out.logits.slice(0, 0, 2), targets, 2.0);
  EXPECT_NEAR(terms[0].second.item<double>(), expected.item<double>(), 1e-6);
}

TEST(StepAdaptation, TheStudentSeesARescaledBatchAndAnswersAtFullSize) {
  Room s;
  s.cfg.adaptation.student_scale = 0.5;
  auto p = s.plugin(false);
  std::set<int64_t> sizes;
  for (int64_t it = 0; it < 8; ++it) {  // drawn per iteration, from (seed, step, iteration)
    s.ctx.iteration = it;
    const auto out = p->forward(s.ctx, s.batch.images, [&](const torch::Tensor& x) {
      sizes.insert(x.size(2));
      EXPECT_EQ(x.size(2), x.size(3));
      return s.teacher->forward(x);
    });
    EXPECT_EQ(out.logits.size(2), 32);  // back at the labels' size
    EXPECT_EQ(out.logits.size(3), 32);
  }
  EXPECT_GE(sizes.size(), 3u);
  EXPECT_GE(*sizes.begin(), 16);  // 32 x [0.5, 1.5]
  EXPECT_LE(*sizes.rbegin(), 48);
}

TEST(StepAdaptation, AnUnlabelledStepWithoutATeacherIsAnError) {
  Room s;
  s.ctx.old_model = nullptr;
  auto p = s.plugin(false);
  std::shared_ptr<const data::Dataset> dataset;
  data::LoaderOptions lo;
  test::expect_error([&] { p->prepare_data(s.ctx, dataset, lo); },
                     {"step 1", "unlabelled environment needs a model to learn from"});
}

}  // namespace
}  // namespace cseg
