#include "cseg/models/deeplab.h"

#include "cseg/core/error.h"

namespace nn = torch::nn;
namespace F = torch::nn::functional;

namespace cseg::models {

namespace {

/// The norm of an image-pooling branch. BatchNorm over a single value per channel is undefined:
/// with one image in a training batch the branch uses its running statistics instead of failing.
torch::Tensor normalize_pooled(nn::AnyModule& bn, const torch::Tensor& y) {
  auto module = bn.ptr();
  const bool single = module->is_training() && y.size(0) == 1 && y.size(2) * y.size(3) == 1;
  if (single) module->eval();
  auto out = bn.forward(y);
  if (single) module->train();
  return out;
}

/// ASPP image-pooling branch: global average, 1x1 conv, norm, activation, broadcast back.
struct AsppPoolingImpl : SeqImpl {
  AsppPoolingImpl(Norm norm, int in, int out) : norm(norm), bn(norm_layer(norm, out)) {
    push_back(nn::AdaptiveAvgPool2d(1));
    push_back(conv2d(in, out, 1));
    push_back(bn);
    push_back(activation(norm));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = ptr(1)->as<ConvImpl>()->forward(F::adaptive_avg_pool2d(x, F::AdaptiveAvgPool2dFuncOptions(1)));
    return resize_to(activate_(norm, normalize_pooled(bn, y)), x.size(2), x.size(3));
  }
  Norm norm;
  nn::AnyModule bn;
};
TORCH_MODULE(AsppPooling);

/// torchvision's ASPP: convs (1x1, three dilated 3x3, image pooling) concatenated and projected.
struct AsppImpl : nn::Module {
  AsppImpl(Norm norm, int in, const std::vector<int>& rates, int out, double dropout) {
    convs = register_module("convs", nn::ModuleList());
    convs->push_back(conv_norm_act(norm, in, out, 1));
    for (int r : rates) convs->push_back(conv_norm_act(norm, in, out, 3, 1, r, r));
    pooling = AsppPooling(norm, in, out);
    convs->push_back(pooling);
    project = register_module("project", conv_norm_act(norm, int(rates.size() + 2) * out, out, 1));
    project->push_back(nn::Dropout(dropout));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    std::vector<torch::Tensor> parts;
    for (size_t k = 0; k + 1 < convs->size(); ++k) parts.push_back(convs[k]->as<SeqImpl>()->forward(x));
    parts.push_back(pooling->forward(x));
    return project->forward(torch::cat(parts, 1));
  }
  nn::ModuleList convs{nullptr};
  AsppPooling pooling{nullptr};
  Seq project{nullptr};
};
TORCH_MODULE(Aspp);

/// DeepLabV3's head: classifier.0 = ASPP, .1 = 3x3 conv, .2 = norm (.3 = activation).
struct V3HeadImpl : nn::Module {
  V3HeadImpl(Norm norm, int in, const std::vector<int>& rates) : norm(norm) {
    aspp = register_module("0", Aspp(norm, in, rates, 256, 0.5));
    conv = register_module("1", conv2d(256, 256, 3, 1, 1));
    bn = norm_layer(norm, 256);
    register_module("2", bn.ptr());
  }
  Norm norm;
  Aspp aspp{nullptr};
  Conv conv{nullptr};
  nn::AnyModule bn;
};
TORCH_MODULE(V3Head);

/// The MiB/PLOP/SDR codebases' DeepLabV3 head (layout mib). Registration order matters for
/// fold_batch_norm, which folds a norm into the conv registered just before it: red_bn normalises
/// the *sum* of red_conv's and pool_red_conv's outputs, so neither may precede it.
struct MibHeadImpl : nn::Module {
  MibHeadImpl(Norm norm, int in, const std::vector<int>& rates, int eval_pooling)
      : norm(norm), eval_pooling(eval_pooling) {
    CSEG_CHECK(rates.size() == 3, "DeepLab layout mib has three dilated ASPP convs; model.aspp_rates has {}",
               rates.size());
    map_convs = register_module("map_convs", nn::ModuleList());
    map_convs->push_back(conv2d(in, hidden, 1));
    for (int r : rates) map_convs->push_back(conv2d(in, hidden, 3, 1, r, r));
    map_bn = norm_layer(norm, hidden * 4);
    register_module("map_bn", map_bn.ptr());
    red_bn = norm_layer(norm, hidden);
    register_module("red_bn", red_bn.ptr());
    red_conv = register_module("red_conv", conv2d(hidden * 4, hidden, 1));
    global_pooling_conv = register_module("global_pooling_conv", conv2d(in, hidden, 1));
    global_pooling_bn = norm_layer(norm, hidden);
    register_module("global_pooling_bn", global_pooling_bn.ptr());
    pool_red_conv = register_module("pool_red_conv", conv2d(hidden, hidden, 1));
  }

  torch::Tensor forward(const torch::Tensor& x) {
    std::vector<torch::Tensor> maps;
    for (const auto& m : *map_convs) maps.push_back(m->as<ConvImpl>()->forward(x));
    auto out = red_conv->forward(activate_(norm, map_bn.forward(torch::cat(maps, 1))));
    auto pool = global_pooling_conv->forward(pooled(x));
    pool = pool_red_conv->forward(activate_(norm, normalize_pooled(global_pooling_bn, pool)));
    return activate_(norm, red_bn.forward(out + pool));  // a [N, C, 1, 1] pool broadcasts over the map
  }

  /// The whole map's mean, or at evaluation with eval_pooling > 0 the mean of each window of
  /// eval_pooling cells (clipped to the map), edge-padded back to the map's size as MiB does.
  torch::Tensor pooled(const torch::Tensor& x) {
    if (is_training() || eval_pooling <= 0) return F::adaptive_avg_pool2d(x, F::AdaptiveAvgPool2dFuncOptions(1));
    const int64_t ph = std::min<int64_t>(eval_pooling, x.size(2)), pw = std::min<int64_t>(eval_pooling, x.size(3));
    auto pool = F::avg_pool2d(x, F::AvgPool2dFuncOptions({ph, pw}).stride(1));
    // An even window has no centre: the extra row/column of padding goes after (right, bottom).
    const int64_t left = (pw - 1) / 2, top = (ph - 1) / 2;
    return F::pad(pool, F::PadFuncOptions({left, pw - 1 - left, top, ph - 1 - top}).mode(torch::kReplicate));
  }

  static constexpr int hidden = 256;
  Norm norm;
  int eval_pooling;
  nn::ModuleList map_convs{nullptr};
  nn::AnyModule map_bn, red_bn, global_pooling_bn;
  Conv red_conv{nullptr}, global_pooling_conv{nullptr}, pool_red_conv{nullptr};
};
TORCH_MODULE(MibHead);

/// DeepLabV3+'s decoder: low-level projection of layer1, ASPP on layer4, fuse conv.
struct V3PlusHeadImpl : nn::Module {
  V3PlusHeadImpl(Norm norm, int low_in, int in, const std::vector<int>& rates) {
    project = register_module("project", conv_norm_act(norm, low_in, 48, 1));
    aspp = register_module("aspp", Aspp(norm, in, rates, 256, 0.1));
    classifier = register_module("classifier", conv_norm_act(norm, 304, 256, 3, 1, 1));
  }
  Seq project{nullptr};
  Aspp aspp{nullptr};
  Seq classifier{nullptr};
};
TORCH_MODULE(V3PlusHead);

/// torchvision's FCNHead without its last conv: 3x3 conv to in/4, norm, activation, dropout 0.1.
struct AuxHeadImpl : SeqImpl {
  AuxHeadImpl(Norm norm, int in) {
    push_back(conv2d(in, in / 4, 3, 1, 1));
    push_back(norm_layer(norm, in / 4));
    push_back(activation(norm));
    push_back(nn::Dropout(0.1));
  }
};

}  // namespace

DeepLabLayout parse_deeplab_layout(const std::string& name) {
  if (name == "torchvision") return DeepLabLayout::torchvision;
  if (name == "mib") return DeepLabLayout::mib;
  fail("unknown DeepLab layout '{}'; expected torchvision or mib", name);
}

DeepLab::DeepLab(DeepLabOptions options) : options_(std::move(options)) {
  CSEG_CHECK(!options_.heads.empty(), "DeepLab needs at least one classifier head");
  CSEG_CHECK(options_.output_stride == 8 || options_.output_stride == 16,
             "DeepLab output_stride must be 8 or 16, got {}", options_.output_stride);
  const bool mib = options_.layout == DeepLabLayout::mib;
  CSEG_CHECK(!(mib && options_.plus), "DeepLab layout mib is a DeepLabV3 (the MiB/PLOP/SDR codebases have no V3+)");
  CSEG_CHECK(options_.eval_pooling >= 0, "DeepLab eval_pooling must be >= 0 (0: the whole map), got {}",
             options_.eval_pooling);
  if (options_.aspp_rates.empty()) {  // at stride 8 the MiB codebase's third rate is 32, torchvision's 36
    if (options_.output_stride == 16)
      options_.aspp_rates = {6, 12, 18};
    else
      options_.aspp_rates = mib ? std::vector<int>{12, 24, 32} : std::vector<int>{12, 24, 36};
  }
  ResNetOptions r;
  r.depth = options_.depth;
  r.norm = options_.norm;
  r.dilate = {false, options_.output_stride == 8, true};
  r.dilate_first_block = mib;
  backbone_ = register_module("backbone", ResNet(r));
  const auto ch = backbone_->channels();
  if (mib) {
    auto head = MibHead(options_.norm, ch[3], options_.aspp_rates, options_.eval_pooling);
    classifier_ = register_module("classifier", head.ptr());
  } else if (options_.plus) {
    auto head = V3PlusHead(options_.norm, ch[0], ch[3], options_.aspp_rates);
    classifier_ = register_module("classifier", head.ptr());
  } else {
    auto head = V3Head(options_.norm, ch[3], options_.aspp_rates);
    classifier_ = register_module("classifier", head.ptr());
  }
  heads_ = classifier_->register_module("heads", nn::ModuleList());
  for (int n : options_.heads) heads_->push_back(conv2d(decoder_channels_, n, 1, 1, 0, 1, 1, true));
  if (options_.aux) {
    aux_classifier_ = register_module("aux_classifier", std::make_shared<AuxHeadImpl>(options_.norm, ch[2]));
    aux_heads_ = aux_classifier_->register_module("heads", nn::ModuleList());
    for (int n : options_.heads) aux_heads_->push_back(conv2d(ch[2] / 4, n, 1, 1, 0, 1, 1, true));
  }
}

void DeepLab::add_head(int num_new) {
  CSEG_CHECK(num_new > 0, "a new head needs at least one class");
  options_.heads.push_back(num_new);
  heads_->push_back(conv2d(decoder_channels_, num_new, 1, 1, 0, 1, 1, true));
  if (options_.aux) aux_heads_->push_back(conv2d(backbone_->channels()[2] / 4, num_new, 1, 1, 0, 1, 1, true));
}

std::vector<Segmenter::HeadAlias> DeepLab::head_aliases() const {
  // The MiB codebases keep a list of per-step heads (`cls.<k>`): the importer joins them into one
  // `cls.0`, split here over this model's heads.
  const char* single = options_.layout == DeepLabLayout::mib ? "cls.0"
                       : options_.plus                       ? "classifier.classifier.3"
                                                             : "classifier.4";
  std::vector<HeadAlias> a{{single, "classifier.heads"}};
  if (options_.aux) a.push_back({"aux_classifier.4", "aux_classifier.heads"});
  return a;
}

ModelOutput DeepLab::forward(const torch::Tensor& x) {
  const int64_t h = x.size(2), w = x.size(3);
  auto f = backbone_->features(x, feature_taps_);
  ModelOutput out;
  torch::Tensor aspp, decoded;
  if (options_.layout == DeepLabLayout::mib) {
    aspp = decoded = classifier_->as<MibHeadImpl>()->forward(f.out[3]);
  } else if (options_.plus) {
    auto* head = classifier_->as<V3PlusHeadImpl>();
    aspp = head->aspp->forward(f.out[3]);
    auto low = head->project->forward(f.out[0]);
    decoded = head->classifier->forward(torch::cat({low, resize_to(aspp, low.size(2), low.size(3))}, 1));
  } else {
    auto* head = classifier_->as<V3HeadImpl>();
    aspp = head->aspp->forward(f.out[3]);
    decoded = activate_(options_.norm, head->bn.forward(head->conv->forward(aspp)));
  }
  auto lowres = run_heads(heads_, decoded);
  out.logits = resize_to(lowres, h, w);
  if (options_.aux && is_training())
    out.aux_logits = resize_to(run_heads(aux_heads_, aux_classifier_->as<AuxHeadImpl>()->forward(f.out[2])), h, w);
  if (feature_taps_)
    out.features = {{"stem", f.stem},     {"layer1", f.pre[0]}, {"layer2", f.pre[1]},
                    {"layer3", f.pre[2]}, {"layer4", f.pre[3]}, {"encoder", f.out[3]},
                    {"aspp", aspp},       {"decoder", decoded}, {"logits_lowres", lowres}};
  return out;
}

}  // namespace cseg::models

namespace cseg::models {

torch::Tensor DeepLab::encode(const torch::Tensor& x) { return backbone_->features(x, false).out[3]; }

}  // namespace cseg::models
