// DKD (methods/dkd.h): its losses on values derived by hand, its prediction rule, the new heads'
// initialisation from the auxiliary classifier, fixed normalisation statistics after step 0, and
// two trained steps with every term logged.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "../tiny_experiment.h"
#include "cseg/engine/experiment_data.h"
#include "cseg/engine/trainer.h"
#include "cseg/methods/dkd.h"
#include "cseg/models/layers.h"

using namespace cseg;
using namespace cseg::methods;

namespace {
const double ln2 = std::log(2.0);
/// [1, C, 1, P] from one row of P values per channel.
torch::Tensor pixels(const std::vector<std::vector<float>>& channels) {
  std::vector<torch::Tensor> rows;
  for (const auto& c : channels) rows.push_back(torch::tensor(c));
  return torch::stack(rows).unsqueeze(0).unsqueeze(2);
}
}  // namespace

TEST(DKD, MultilabelBceWeighsPositivesAndSkipsBackground) {
  // Two pixels labelled 1 and 2; channel 0 (background) must not count, whatever it holds.
  // Class 1, logits (0, ln 3): pixel 0 positive, 2·softplus(0) = 2 ln 2; pixel 1 negative,
  // softplus(ln 3) = ln 4 = 2 ln 2; mean 2 ln 2. Class 2, logits (0, 0): negative ln 2, positive
  // 2 ln 2; mean 1.5 ln 2. Sum over classes: 3.5 ln 2.
  auto x = pixels({{100, -100}, {0, std::log(3.f)}, {0, 0}});
  auto labels = torch::tensor({int64_t(1), int64_t(2)}).view({1, 1, 2});
  EXPECT_NEAR(DKD::multilabel_bce(x, labels, 1, 2.0).item<double>(), 3.5 * ln2, 1e-6);
  EXPECT_NEAR(DKD::multilabel_bce(x, labels, 2, 2.0).item<double>(), 1.5 * ln2, 1e-6);
  // pos_weight 1: plain binary cross-entropy; an ignored label (255) is a negative of every class.
  auto ignored = torch::tensor({int64_t(255), int64_t(255)}).view({1, 1, 2});
  EXPECT_NEAR(DKD::multilabel_bce(x, ignored, 2, 1.0).item<double>(), ln2, 1e-6);
  EXPECT_EQ(DKD::multilabel_bce(x, labels, 3, 2.0).item<double>(), 0.0);  // no class from 3 on
}

TEST(DKD, SoftBceIsTheCrossEntropyWithTheOldScores) {
  // Old scores σ(0) = 0.5 on two classes: ln 2 per pixel and class, summed over the classes.
  auto zero = torch::zeros({1, 2, 1, 3});
  EXPECT_NEAR(DKD::soft_bce(zero, zero).item<double>(), 2 * ln2, 1e-6);
  // Equal logits ln 3 (score 0.75): the entropy of 0.75, the minimum over x.
  auto same = torch::full({1, 1, 1, 1}, std::log(3.f));
  const double entropy = -(0.75 * std::log(0.75) + 0.25 * std::log(0.25));
  EXPECT_NEAR(DKD::soft_bce(same, same).item<double>(), entropy, 1e-6);
  EXPECT_GT(DKD::soft_bce(same * -1, same).item<double>(), entropy + 0.5);
}

TEST(DKD, DecompositionSplitsEachLogitIntoItsPositiveAndNegativeEvidence) {
  // f = (2, 3); class a: w = (1, −1) → +2 and −3; class b: w = (−2, 0.5) → +1.5 and −4.
  auto f = torch::tensor({2.f, 3.f}).view({1, 2, 1, 1});
  auto w = torch::tensor({1.f, -1.f, -2.f, 0.5f}).view({2, 2});
  auto [pos, neg] = DKD::decompose(f, w);
  EXPECT_TRUE(torch::allclose(pos.flatten(), torch::tensor({2.f, 1.5f})));
  EXPECT_TRUE(torch::allclose(neg.flatten(), torch::tensor({-3.f, -4.f})));
  // The parts add up to the logit without bias, and gradients reach both the weights and f.
  auto wg = w.clone().set_requires_grad(true);
  auto fg = f.clone().set_requires_grad(true);
  auto [p, n] = DKD::decompose(fg, wg);
  EXPECT_TRUE(torch::allclose((p + n).flatten(), torch::matmul(w, f.flatten())));
  p.sum().backward();
  EXPECT_TRUE(torch::allclose(wg.grad(), torch::tensor({2.f, 0.f, 0.f, 3.f}).view({2, 2})));
  EXPECT_TRUE(torch::allclose(fg.grad().flatten(), torch::tensor({1.f, 0.5f})));
}

TEST(DKD, PredictsBackgroundWhereNoClassScoresAboveOneHalf) {
  // Channel 0 is ignored even when highest. Pixels: all negative → 0; a score of exactly 0.5 → 0
  // (DKD asks for more); (1, 2) → class 2; (3, 1) → class 1.
  auto x = pixels({{10, 10, 10, 10}, {-1, 0, 1, 3}, {-2, -1, 2, 1}});
  auto pred = DKD::sigmoid_prediction(x).flatten();
  EXPECT_TRUE(torch::equal(pred, torch::tensor({int64_t(0), int64_t(0), int64_t(2), int64_t(1)})));
  DKD dkd(Options("dkd"));
  models::ModelOutput out;
  out.logits = x;
  EXPECT_TRUE(torch::equal(dkd.predict(out).flatten(), pred));
}

TEST(DKD, NewHeadsStartAsTheAuxiliaryClassifierAndNormsStayFixedAfterStepZero) {
  auto model = models::make_model(models::ModelOptions{}, 3);
  DKD dkd(Options("dkd"));
  StepContext ctx;
  ctx.model = model.get();
  dkd.on_step_begin(ctx);  // step 0: the auxiliary classifier is made
  auto aux = dkd.parameters();
  ASSERT_EQ(aux.size(), 2u);
  ASSERT_TRUE(aux[0].defined());
  {
    torch::NoGradGuard no_grad;
    aux[0].normal_();
    aux[1].fill_(-1.5);
  }
  // Step 0 leaves the norms in training mode; step 1 fixes them before every forward.
  Batch batch;
  model->train();
  dkd.before_forward(ctx, batch);
  auto norms_training = [&] {
    std::vector<bool> modes;
    for (const auto& m : model->modules(false))
      if (std::dynamic_pointer_cast<models::BatchNorm2dImpl>(m)) modes.push_back(m->is_training());
    return modes;
  };
  for (bool on : norms_training()) EXPECT_TRUE(on);
  model->add_head(2);
  ctx.step = 1;
  dkd.on_step_begin(ctx);
  auto w = DKD::classifier_weight(*model);
  ASSERT_EQ(w.size(0), 5);
  for (int row : {3, 4}) EXPECT_TRUE(torch::equal(w[row], aux[0].flatten())) << row;
  EXPECT_FALSE(torch::equal(w[2], aux[0].flatten()));
  auto bias = model->named_parameters().find(model->head_aliases().front().heads + ".1.bias");
  ASSERT_NE(bias, nullptr);
  EXPECT_TRUE(torch::equal(*bias, torch::full({2}, -1.5)));
  model->train();
  dkd.before_forward(ctx, batch);
  auto modes = norms_training();
  ASSERT_FALSE(modes.empty());
  for (bool on : modes) EXPECT_FALSE(on);
  for (const auto& p : model->parameters()) EXPECT_TRUE(p.requires_grad());  // parameters still train
}

TEST(DKD, TrainsTwoStepsWithEveryTermLogged) {
  test::TempDir d;
  auto cfg = test::tiny_experiment(d.path(), 3);
  auto data = engine::open_experiment_data(cfg, "", 1);
  auto method = make_method("dkd");
  auto r = engine::Trainer(cfg, data, *method, (d / "run").string()).run();
  ASSERT_EQ(r["steps"].size(), 2u);
  EXPECT_EQ(r["steps"][1]["test"]["per_class_iou"].size(), 5u);
  std::ifstream in(d / "run" / "metrics.jsonl");
  std::string line;
  std::map<int, int> logged;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    if (!j.contains("iteration")) continue;
    const int step = j["step"].get<int>();
    std::vector<std::string> terms{"mbce", "ac"};
    if (step == 1)
      terms.insert(terms.end(), {"kd", "dkd_pos", "dkd_neg"});
    else
      EXPECT_FALSE(j.contains("loss_kd")) << line;  // no teacher at step 0
    for (const auto& t : terms) {
      ASSERT_TRUE(j.contains("loss_" + t)) << line;
      EXPECT_TRUE(std::isfinite(j["loss_" + t].get<double>())) << line;
    }
    ++logged[step];
  }
  EXPECT_GT(logged[0], 0);
  EXPECT_GT(logged[1], 0);
}
