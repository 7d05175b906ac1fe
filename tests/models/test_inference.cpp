// Inference rewrites (models/inference.h) must not change what a model computes, and training
// in the channels-last layout (model.channels_last) must not change what a model learns.
#include <gtest/gtest.h>

#include "cseg/config/experiment.h"
#include "cseg/losses/losses.h"
#include "cseg/models/inference.h"
#include "cseg/models/layers.h"
#include "cseg/models/predictions.h"
#include "cseg/models/segmenter.h"

using namespace cseg;

namespace {

models::ModelOptions model_config(const std::string& name) {
  models::ModelOptions c;
  c.name = name;
  if (name == "deeplabv3_mib") {  // the MiB codebases' DeepLabV3, pooling 2-cell windows at evaluation
    c.name = "deeplabv3";
    c.layout = "mib";
    c.norm = "bn_leaky";
    c.mib_eval_pooling = 2;
  }
  c.backbone = "resnet18";
  c.unet_channels = 8;
  c.aux = name != "lraspp_mobilenet_v3_large";  // an aux head must not get in the way (it only runs in training)
  return c;
}

/// Non-trivial statistics and affine parameters in every norm layer, so a fold that ignored one of
/// them (or paired a norm with the wrong convolution) would change the output.
int randomise_norms(torch::nn::Module& m) {
  torch::NoGradGuard no_grad;
  int n = 0;
  for (const auto& child : m.modules()) {
    torch::Tensor w, b, mean, var;
    if (auto* bn = dynamic_cast<models::BatchNorm2dImpl*>(child.get())) {
      w = bn->weight, b = bn->bias, mean = bn->running_mean, var = bn->running_var;
    } else if (auto* fbn = dynamic_cast<models::FrozenBatchNorm2dImpl*>(child.get())) {
      w = fbn->weight, b = fbn->bias, mean = fbn->running_mean, var = fbn->running_var;
    } else {
      continue;
    }
    w.uniform_(0.5, 1.5), b.uniform_(-0.2, 0.2), mean.uniform_(-0.2, 0.2), var.uniform_(0.5, 2.0);
    ++n;
  }
  return n;
}

double max_relative_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item<double>();
}

class InferenceRewrite : public ::testing::TestWithParam<std::string> {};

}  // namespace

TEST_P(InferenceRewrite, FoldingAndChannelsLastKeepTheOutputAndFoldEveryNorm) {
  torch::manual_seed(3);
  auto model = models::make_model(model_config(GetParam()), 5);
  model->add_head(2);
  const int norms = randomise_norms(*model);
  model->eval();
  torch::NoGradGuard no_grad;
  auto x = torch::randn({2, 3, 64, 64});
  auto before = model->forward(x).logits;

  // Every norm layer sits right after its convolution, except in layout mib the norm of the four
  // concatenated ASPP convs and the one of the sum of the two branches: they stay.
  const int unfoldable = GetParam() == "deeplabv3_mib" ? 2 : 0;
  EXPECT_EQ(models::fold_batch_norm(*model), norms - unfoldable);
  auto folded = model->forward(x).logits;
  EXPECT_LT(max_relative_diff(folded, before), 1e-4);
  EXPECT_EQ(models::fold_batch_norm(*model), 0) << "folding twice must not fold again";

  models::to_channels_last(*model);
  for (const auto& p : model->parameters())
    if (p.dim() == 4) EXPECT_TRUE(p.is_contiguous(torch::MemoryFormat::ChannelsLast));
  auto last = model->forward(x).logits;
  EXPECT_LT(max_relative_diff(last, before), 1e-4);
}

INSTANTIATE_TEST_SUITE_P(Models, InferenceRewrite,
                         ::testing::Values("fast_scnn", "deeplabv3", "deeplabv3plus", "unet", "deeplabv3_mib",
                                           "lraspp_mobilenet_v3_large"),
                         [](const auto& info) { return info.param; });

TEST(InferenceRewrite, AFoldedModelRefusesToTrain) {
  auto model = models::make_model(model_config("fast_scnn"), 3);
  EXPECT_THROW(models::fold_batch_norm(*model), std::exception) << "a model in training mode has no fixed statistics";
  models::prepare_for_inference(*model);
  model->train();
  EXPECT_THROW(model->forward(torch::randn({1, 3, 64, 64})), std::exception);
}

class ChannelsLast : public ::testing::TestWithParam<std::string> {};

TEST_P(ChannelsLast, TrainingGradientsAreAsPreciseAsNchw) {
  // One training forward/backward in NCHW, in channels-last and in float64 (the reference), from
  // the same weights: the channels-last gradients must be as close to float64 as NCHW's are.
  auto grads = [](bool channels_last, bool dbl) {
    torch::manual_seed(7);
    auto cfg = model_config(GetParam());
    cfg.dropout = 0;
    auto model = models::make_model(cfg, 4);
    if (dbl) model->to(torch::kDouble);
    if (channels_last) models::to_channels_last(*model);
    model->train();
    torch::manual_seed(8);
    // Fast-SCNN reduces 32x32 to 1x1, where batch norm amplifies rounding by up to 1/sqrt(eps)
    // per layer: 128x128 keeps its global features 4x4.
    const int64_t size = GetParam() == "fast_scnn" ? 128 : 32;
    auto x = torch::randn({2, 3, size, size});
    auto y = torch::randint(0, 4, {2, size, size}, torch::kInt64);
    auto out = model->forward(dbl ? x.to(torch::kDouble) : x);
    if (channels_last) EXPECT_TRUE(out.logits.is_contiguous(torch::MemoryFormat::ChannelsLast));
    auto loss = losses::cross_entropy(out.logits, y) + 0.4 * losses::cross_entropy(out.aux_logits, y);
    loss.backward();
    std::map<std::string, torch::Tensor> g;
    for (const auto& p : model->named_parameters()) g[p.key()] = p.value().grad().to(torch::kDouble);
    return g;
  };
  auto reference = grads(false, true), nchw = grads(false, false), last = grads(true, false);
  // Errors relative to each gradient's size, or 1% of the largest one for gradients that are
  // zero in exact arithmetic (a bias followed by batch norm): their float values are pure noise.
  double largest = 0;
  for (const auto& [name, ref] : reference) largest = std::max(largest, ref.abs().max().item<double>());
  for (const auto& [name, ref] : reference) {
    const double scale = std::max(ref.abs().max().item<double>(), 1e-2 * largest);
    const double nchw_err = (nchw[name] - ref).abs().max().item<double>() / scale;
    const double last_err = (last[name] - ref).abs().max().item<double>() / scale;
    EXPECT_LT(nchw_err, 1e-3) << name;
    EXPECT_LT(last_err, 1e-3) << name << " (NCHW: " << nchw_err << ")";
  }
}

// Fast-SCNN is where LibTorch 1.13's own channels-last batch-norm backward loses precision (up
// to ~5% relative error in the input gradient against float64), hence cseg's BatchNorm2d
// normalises channels-last maps in NCHW while training (models/layers.cpp).
INSTANTIATE_TEST_SUITE_P(Models, ChannelsLast, ::testing::Values("fast_scnn", "unet"),
                         [](const auto& info) { return info.param; });

// predicted_classes is argmax over the channels, index for index: ties keep the first maximum,
// NaN counts as the maximum (first NaN wins), for planar and channels-last float32 (the kernel),
// and for the layouts and types that fall back to max().
TEST(Predictions, PredictedClassesAreArgmaxIndexForIndex) {
  torch::manual_seed(7);
  for (int64_t c : {1, 2, 5, 11, 19}) {
    SCOPED_TRACE(c);
    // Integer-valued logits: many ties. 33 x 45 pixels: blocks that do not divide the image.
    auto x = torch::randint(0, 3, {3, c, 33, 45}).to(torch::kFloat);
    x.view(-1)[17] = NAN;
    x.view(-1)[x.numel() - 5] = NAN;
    if (c > 2) x[1].select(1, 4).select(1, 6).fill_(NAN);  // every channel of one pixel
    const auto expected = x.argmax(1);
    EXPECT_TRUE(torch::equal(models::predicted_classes(x), expected));
    EXPECT_TRUE(torch::equal(models::predicted_classes(x.contiguous(torch::MemoryFormat::ChannelsLast)), expected));
    EXPECT_TRUE(torch::equal(models::predicted_classes(x.to(torch::kDouble)), expected));
    const auto strided = x.slice(3, 1, 40, 2);  // neither layout: the fallback
    EXPECT_TRUE(torch::equal(models::predicted_classes(strided), strided.argmax(1)));
    auto y = torch::randn({2, c, 70, 70});  // continuous values, pixels over several blocks
    EXPECT_TRUE(torch::equal(models::predicted_classes(y), y.argmax(1)));
  }
  auto chw = torch::randn({4, 9, 10});
  EXPECT_TRUE(torch::equal(models::predicted_classes(chw, 0), chw.argmax(0)));
}
