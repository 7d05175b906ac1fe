// LR-ASPP on MobileNetV3-Large: shapes and taps, torchvision parity through the weight importer
// (fixtures by tools/make_weight_fixtures.py), an ImageNet MobileNetV3 as the backbone, training.
#include <gtest/gtest.h>

#include "../fixtures.h"
#include "../weight_fixtures.h"
#include "cseg/models/inference.h"
#include "cseg/models/lraspp.h"
#include "cseg/weights/load.h"

using namespace cseg;
using namespace cseg::models;
using weights::LoadMode;

TEST(Lraspp, ShapesHeadsTapsAndParameterCount) {
  Lraspp m(LrasppOptions{{5}});
  m.train();
  auto out = m.forward(torch::randn({2, 3, 64, 96}));
  EXPECT_EQ(out.logits.sizes(), (std::vector<int64_t>{2, 5, 64, 96}));
  EXPECT_EQ(out.feature("low").sizes(), (std::vector<int64_t>{2, 40, 8, 12}));       // stride 8
  EXPECT_EQ(out.feature("high").sizes(), (std::vector<int64_t>{2, 960, 4, 6}));      // stride 16 (dilated)
  EXPECT_EQ(out.feature("decoder").sizes(), (std::vector<int64_t>{2, 168, 8, 12}));  // 40 + 128
  EXPECT_EQ(out.feature("logits_lowres").sizes(), (std::vector<int64_t>{2, 5, 8, 12}));
  EXPECT_FALSE(out.aux_logits.defined());
  m.add_head(2);
  EXPECT_EQ(m.head_sizes(), (std::vector<int>{5, 2}));
  m.eval();
  auto e = m.forward(torch::randn({1, 3, 50, 70}));  // not a multiple of 16
  EXPECT_EQ(e.logits.sizes(), (std::vector<int64_t>{1, 7, 50, 70}));

  // torchvision's lraspp_mobilenet_v3_large for 21 classes has 3,221,538 parameters (its weights'
  // num_params); joining low_classifier and high_classifier into one conv saves one bias per class.
  int64_t n = 0;
  for (auto& p : Lraspp(LrasppOptions{{21}}).parameters()) n += p.numel();
  EXPECT_EQ(n, 3221538 - 21);
}

TEST(Lraspp, GradientsReachEveryParameter) {
  torch::manual_seed(0);
  Lraspp m(LrasppOptions{{3, 2}});
  m.train();
  auto out = m.forward(torch::randn({2, 3, 48, 48}));
  auto target = torch::randint(0, 5, {2, 48, 48}, torch::kLong);
  torch::nn::functional::cross_entropy(out.logits, target).backward();
  for (auto& p : m.named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << p.key();
  }
}

TEST(Parity, LrasppMobileNetV3MatchesTorchvisionThroughTheImporter) {
  auto p = test::read_parity("lraspp_mobilenet_v3_large");
  torch::NoGradGuard no_grad;
  for (const std::vector<int>& heads : {std::vector<int>{5}, std::vector<int>{3, 2}}) {
    SCOPED_TRACE(heads.size());
    Lraspp m(LrasppOptions{heads});
    auto report = weights::load_state_dict(m, p.state, {LoadMode::full, true}, "lraspp.pth");
    EXPECT_TRUE(report.ok()) << report.to_string();
    const auto text = report.to_string();
    EXPECT_NE(text.find("mapped classifier.low_classifier + classifier.high_classifier onto classifier.heads"),
              std::string::npos)
        << text;
    m.eval();
    const double diff = test::max_abs_diff(m.forward(p.input).logits, p.output);
    std::printf("parity lraspp_mobilenet_v3_large, %zu head(s): max |cseg - torchvision| = %.3g (output max %.3g)\n",
                heads.size(), diff, p.output.abs().max().item<double>());
    EXPECT_LT(diff, 1e-4);
    // Folded for inference (batch norms into the convolutions): the same logits.
    prepare_for_inference(m);
    EXPECT_LT(test::max_abs_diff(m.forward(p.input).logits, p.output), 1e-4);
  }
  // What the test hangs on: without the high-level classifier the logits are far off.
  Lraspp m(LrasppOptions{{5}});
  weights::NamedTensors partial;
  for (auto& [k, t] : p.state)
    if (k.rfind("classifier.high_classifier.", 0) != 0) partial.emplace_back(k, t);
  test::expect_error(
      [&] {
        weights::load_state_dict(m, partial, {LoadMode::full, true}, "lraspp.pth");
      },
      {"lraspp.pth: the weights do not fit the model", "classifier.high_classifier.weight"});
  weights::load_state_dict(m, partial, {LoadMode::full, false}, "lraspp.pth");
  m.eval();
  EXPECT_GT(test::max_abs_diff(m.forward(p.input).logits, p.output), 0.01);
  // Skipping the classifier skips all of it (both convs' weights and biases), and then a file
  // without the high-level classifier is no error.
  for (const auto* state : {&p.state, &partial}) {
    Lraspp other(LrasppOptions{{3}});
    auto report = weights::load_state_dict(other, *state, {LoadMode::skip_classifier, true}, "lraspp.pth");
    EXPECT_TRUE(report.ok()) << report.to_string();
    EXPECT_EQ(report.ignored, state == &p.state ? 4 : 2) << report.to_string();
  }
}

TEST(LoadReport, ImageNetMobileNetV3FeaturesLoadAsTheLrasppBackbone) {
  // torchvision's mobilenet_v3_large (ImageNet layout: features.0..16, classifier.0/3 linear).
  const auto state = test::read_synth_state("mobilenet_v3_large_shapes.pt");
  Lraspp m(LrasppOptions{{4}});
  auto report = weights::load_state_dict(m, state, {LoadMode::backbone, true}, "mobilenet_v3_large.pth");
  EXPECT_TRUE(report.ok()) << report.to_string();
  EXPECT_EQ(report.ignored, 4) << report.to_string();  // the classifier's two linear layers
  // Every parameter and statistic of the backbone comes from the file.
  int backbone_tensors = 0;
  for (auto& kv : m.named_parameters()) backbone_tensors += kv.key().rfind("backbone.", 0) == 0;
  for (auto& kv : m.named_buffers()) backbone_tensors += kv.key().rfind("backbone.", 0) == 0;
  EXPECT_EQ(report.loaded, backbone_tensors);
  EXPECT_TRUE(torch::equal(m.named_parameters()["backbone.14.block.2.fc1.weight"],
                           test::synth("features.14.block.2.fc1.weight", {240, 960, 1, 1})));
  EXPECT_TRUE(
      torch::equal(m.named_buffers()["backbone.16.1.running_var"], test::synth("features.16.1.running_var", {960})));
}
