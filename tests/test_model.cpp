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
  for (const char* key : {"learning_to_downsample.conv.conv.0.weight", "learning_to_downsample.dsconv2.conv.4.bias",
                          "global_feature_extractor.bottleneck1.0.block.0.conv.0.weight",
                          "global_feature_extractor.bottleneck3.2.block.3.weight",
                          "global_feature_extractor.ppm.conv4.conv.0.weight", "global_feature_extractor.ppm.out.conv.1.weight",
                          "feature_fusion.dwconv.conv.0.weight", "feature_fusion.conv_lower_res.0.bias",
                          "feature_fusion.conv_higher_res.1.weight", "classifier.dsconv1.conv.3.weight",
                          "classifier.heads.0.weight", "auxlayer.0.weight", "aux_heads.0.bias"})
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
