#include <gtest/gtest.h>

#include "cseg/models/fast_scnn.h"

using namespace cseg::models;

TEST(FastScnn, ShapesHeadsAndFeatureTaps) {
  FastScnnOptions o;
  o.heads = {5};
  o.aux = true;
  FastScnn m(o);
  m.train();
  auto out = m.forward(torch::randn({2, 3, 64, 96}));
  EXPECT_EQ(out.logits.sizes(), (std::vector<int64_t>{2, 5, 64, 96}));
  EXPECT_EQ(out.aux_logits.sizes(), (std::vector<int64_t>{2, 5, 64, 96}));
  EXPECT_EQ(out.features.at("learning_to_downsample").sizes(), (std::vector<int64_t>{2, 64, 8, 12}));
  EXPECT_EQ(out.features.at("global_feature_extractor").size(1), 128);
  m.add_head(2);
  EXPECT_EQ(m.num_classes(), 7);
  EXPECT_EQ(m.head_sizes(), (std::vector<int>{5, 2}));
  m.eval();
  auto e = m.forward(torch::randn({1, 3, 40, 40}));  // not a multiple of 32
  EXPECT_EQ(e.logits.sizes(), (std::vector<int64_t>{1, 7, 40, 40}));
  EXPECT_FALSE(e.aux_logits.defined());  // the auxiliary head only runs in training
}

TEST(FastScnn, ParameterNamesMirrorTheReference) {
  FastScnn m(FastScnnOptions{{19}, true, 0.1});
  auto params = m.named_parameters();
  for (const char* key :
       {"learning_to_downsample.conv.conv.0.weight", "learning_to_downsample.dsconv2.conv.4.bias",
        "global_feature_extractor.bottleneck1.0.block.0.conv.0.weight",
        "global_feature_extractor.bottleneck3.2.block.3.weight", "global_feature_extractor.ppm.conv4.conv.0.weight",
        "global_feature_extractor.ppm.out.conv.1.weight", "feature_fusion.dwconv.conv.0.weight",
        "feature_fusion.conv_lower_res.0.bias", "feature_fusion.conv_higher_res.1.weight",
        "classifier.dsconv1.conv.3.weight", "classifier.heads.0.weight", "auxlayer.0.weight", "aux_heads.0.bias"})
    EXPECT_NE(params.find(key), nullptr) << key;
  EXPECT_NE(m.named_buffers().find("feature_fusion.conv_lower_res.1.running_mean"), nullptr);
  // 1.14 M parameters for 19 classes without the aux head (performance.md); ours adds the aux head.
  int64_t n = 0;
  for (auto& p : FastScnn(FastScnnOptions{{19}, false, 0.1}).parameters()) n += p.numel();
  EXPECT_NEAR(static_cast<double>(n), 1.14e6, 0.02e6);
}

TEST(FastScnn, CopyStateMakesIdenticalModels) {
  auto a = std::make_shared<FastScnn>(FastScnnOptions{{3, 2}, false, 0.0});
  auto b = a->make_like();
  copy_state(*b, *a);
  a->eval();
  b->eval();
  auto x = torch::randn({1, 3, 32, 32});
  EXPECT_TRUE(torch::allclose(a->forward(x).logits, b->forward(x).logits));
}

#include "cseg/models/cost.h"
#include "cseg/models/deeplab.h"
#include "cseg/models/unet.h"
#include "fixtures.h"

TEST(DeepLab, ShapesTapsAndHeadsForV3AndV3Plus) {
  for (bool plus : {false, true}) {
    for (int stride : {8, 16}) {
      SCOPED_TRACE(fmt::format("plus={} stride={}", plus, stride));
      DeepLab m(DeepLabOptions{{4}, 18, stride, {}, Norm::bn, plus, true});
      m.train();
      auto out = m.forward(torch::randn({2, 3, 48, 64}));
      EXPECT_EQ(out.logits.sizes(), (std::vector<int64_t>{2, 4, 48, 64}));
      EXPECT_EQ(out.aux_logits.sizes(), (std::vector<int64_t>{2, 4, 48, 64}));
      EXPECT_EQ(out.features.at("stem").sizes(), (std::vector<int64_t>{2, 64, 12, 16}));
      EXPECT_EQ(out.features.at("layer1").sizes(), (std::vector<int64_t>{2, 64, 12, 16}));
      EXPECT_EQ(out.features.at("layer4").sizes(), (std::vector<int64_t>{2, 512, 48 / stride, 64 / stride}));
      EXPECT_EQ(out.features.at("aspp").size(1), 256);
      // V3+ decodes at 1/4 (the low-level skip), V3 at the output stride.
      const int64_t dec = plus ? 12 : 48 / stride;
      EXPECT_EQ(out.features.at("decoder").size(2), dec);
      EXPECT_EQ(out.features.at("logits_lowres").sizes(), (std::vector<int64_t>{2, 4, dec, dec * 64 / 48}));
      // layer4's tap is before the final ReLU: it has negative values.
      EXPECT_LT(out.features.at("layer4").min().item<float>(), 0.0f);
      m.add_head(3);
      m.eval();
      auto e = m.forward(torch::randn({1, 3, 37, 50}));  // odd sizes
      EXPECT_EQ(e.logits.sizes(), (std::vector<int64_t>{1, 7, 37, 50}));
      EXPECT_FALSE(e.aux_logits.defined());
    }
  }
}

TEST(DeepLab, TrainsWithOneImagePerBatch) {
  // BatchNorm in ASPP's image-pooling branch sees one value per channel: it must not throw.
  DeepLab m(DeepLabOptions{{3}, 18, 16, {}, Norm::bn, false, false});
  m.train();
  auto out = m.forward(torch::randn({1, 3, 32, 32}));
  out.logits.sum().backward();
  EXPECT_EQ(out.logits.size(1), 3);
}

// The MiB codebases' DeepLabV3: its taps, a one-image training batch (the pooled branch's norm sees
// one value per channel), windowed pooling at evaluation on odd sizes, and what it refuses.
TEST(DeepLab, MibLayout) {
  DeepLabOptions o{{4}, 18, 16, {}, Norm::bn_leaky, false, false};
  o.layout = DeepLabLayout::mib;
  o.eval_pooling = 2;
  DeepLab m(o);
  EXPECT_EQ(m.named_parameters()["classifier.map_convs.3.weight"].sizes(), (std::vector<int64_t>{256, 512, 3, 3}));
  EXPECT_EQ(m.named_parameters()["classifier.map_bn.weight"].size(0), 1024);
  m.train();
  auto out = m.forward(torch::randn({1, 3, 48, 64}));
  out.logits.sum().backward();
  EXPECT_EQ(out.logits.sizes(), (std::vector<int64_t>{1, 4, 48, 64}));
  EXPECT_TRUE(out.features.at("aspp").equal(out.features.at("decoder")));
  EXPECT_TRUE(m.named_parameters()["classifier.pool_red_conv.weight"].grad().defined());
  m.add_head(2);
  m.eval();
  EXPECT_EQ(m.forward(torch::randn({2, 3, 81, 113})).logits.sizes(), (std::vector<int64_t>{2, 6, 81, 113}));
  // Windows that cover the whole map pool like the whole map.
  torch::NoGradGuard no_grad;
  auto x = torch::randn({1, 3, 64, 64});  // a 4x4 map at stride 16
  DeepLabOptions big = m.options();
  big.eval_pooling = 32;
  DeepLab wide(big);
  copy_state(wide, m);
  wide.eval();
  big.eval_pooling = 0;
  DeepLab global(big);
  copy_state(global, m);
  global.eval();
  EXPECT_LT((wide.forward(x).logits - global.forward(x).logits).abs().max().item<double>(), 1e-5);
  EXPECT_GT((m.forward(x).logits - global.forward(x).logits).abs().max().item<double>(), 1e-4);  // 2x2 windows
  o.plus = true;
  cseg::test::expect_error([&] { DeepLab bad(o); }, {"layout mib is a DeepLabV3"});
}

TEST(Norm, FrozenBatchNormAndLeakyActivation) {
  DeepLab frozen(DeepLabOptions{{3}, 18, 16, {}, Norm::frozen_bn, false, false});
  frozen.train();
  auto before = frozen.named_buffers()["backbone.bn1.running_mean"].clone();
  auto out = frozen.forward(torch::randn({2, 3, 32, 32}) * 3 + 1);
  out.logits.sum().backward();
  // Running statistics stay and the affine parameters get no gradient.
  EXPECT_TRUE(torch::equal(before, frozen.named_buffers()["backbone.bn1.running_mean"]));
  EXPECT_FALSE(frozen.named_parameters()["backbone.layer1.0.bn1.weight"].requires_grad());
  EXPECT_TRUE(frozen.named_parameters()["backbone.layer1.0.conv1.weight"].grad().defined());

  // bn_leaky: negative pre-activations leak with slope 0.01 instead of being cut to 0.
  DeepLab leaky(DeepLabOptions{{3}, 18, 16, {}, Norm::bn_leaky, false, false});
  leaky.eval();
  auto stem = leaky.forward(torch::randn({1, 3, 32, 32})).features.at("stem");
  EXPECT_LT(stem.min().item<float>(), 0.0f);
  DeepLab relu(DeepLabOptions{{3}, 18, 16, {}, Norm::bn, false, false});
  relu.eval();
  EXPECT_GE(relu.forward(torch::randn({1, 3, 32, 32})).features.at("stem").min().item<float>(), 0.0f);
}

TEST(UNet, ShapesTapsBilinearAndTransposed) {
  for (bool bilinear : {true, false}) {
    UNet m(UNetOptions{{3}, 8, bilinear, Norm::bn, true, 0.1});
    m.train();
    auto out = m.forward(torch::randn({2, 3, 36, 52}));  // not a multiple of 16: padded skips
    EXPECT_EQ(out.logits.sizes(), (std::vector<int64_t>{2, 3, 36, 52}));
    EXPECT_EQ(out.aux_logits.sizes(), (std::vector<int64_t>{2, 3, 36, 52}));
    EXPECT_EQ(out.features.at("inc").sizes(), (std::vector<int64_t>{2, 8, 36, 52}));
    EXPECT_EQ(out.features.at("down4").size(1), bilinear ? 64 : 128);
    EXPECT_EQ(out.features.at("decoder").size(1), 8);
    m.add_head(2);
    EXPECT_EQ(m.num_classes(), 5);
  }
}

TEST(Cost, MultiplyAddsMatchTheFormulaPerModule) {
  // UNet at 32x32 with 4 channels: inc is two 3x3 convs at full resolution.
  UNet m(UNetOptions{{3}, 4, true, Norm::bn, false, 0.0});
  auto cost = measure_cost(m, 32, 32, 1, 1);
  const int64_t inc = 32 * 32 * (4 * 3 * 9 + 4 * 4 * 9);
  const int64_t outc = 32 * 32 * 3 * 4;
  std::map<std::string, ModuleCost> by_name;
  for (const auto& c : cost.modules) by_name[c.name] = c;
  EXPECT_EQ(by_name.at("inc").macs, inc);
  EXPECT_EQ(by_name.at("outc").macs, outc);
  EXPECT_EQ(by_name.at("inc").params, 4 * 3 * 9 + 4 * 4 * 9 + 4 * 4);  // convs (no bias) + 2 BN (weight, bias)
  int64_t sum = 0;
  for (const auto& c : cost.modules) sum += c.macs;
  EXPECT_EQ(sum, cost.macs);  // depth 1: the top-level modules partition the total
  // Batch and resolution scale the count linearly; parameters do not change.
  auto twice = measure_cost(m, 64, 32, 2, 1);
  EXPECT_EQ(twice.macs, 4 * cost.macs);
  EXPECT_EQ(twice.params, cost.params);
  // Deeper levels list the children.
  auto deep = measure_cost(m, 32, 32, 1, 3);
  bool found = false;
  for (const auto& c : deep.modules) found |= c.name == "inc.double_conv.0";
  EXPECT_TRUE(found);

  // Fast-SCNN's first conv (3 -> 32, 3x3, stride 2, no padding) at 256x512: 127 x 255 outputs.
  FastScnn f(FastScnnOptions{{19}, false, 0.1});
  auto fc = measure_cost(f, 256, 512, 1, 4);
  std::map<std::string, ModuleCost> fast;
  for (const auto& c : fc.modules) fast[c.name] = c;
  EXPECT_EQ(fast.at("learning_to_downsample.conv.conv.0").macs, int64_t(127) * 255 * 32 * 27);
  EXPECT_EQ(fc.trainable_params, fc.params);

  // Frozen BatchNorm parameters count as parameters but not as trainable ones.
  DeepLab frozen(DeepLabOptions{{3}, 18, 16, {}, Norm::frozen_bn, false, false});
  auto dc = measure_cost(frozen, 64, 64, 1, 1);
  EXPECT_LT(dc.trainable_params, dc.params);
}
