// The model registry: config name -> constructor, and state copying between models.
#include <algorithm>

#include "cseg/core/error.h"
#include "cseg/models/deeplab.h"
#include "cseg/models/fast_scnn.h"
#include "cseg/models/lraspp.h"
#include "cseg/models/unet.h"

namespace cseg::models {

namespace {

std::shared_ptr<Segmenter> make_fast_scnn(const ModelOptions& cfg, int initial_classes) {
  CSEG_CHECK(parse_norm(cfg.norm) == Norm::bn, "model.norm '{}' is not available for fast_scnn (only bn)", cfg.norm);
  FastScnnOptions o;
  o.heads = {initial_classes};
  o.aux = cfg.aux;
  o.dropout = cfg.dropout;
  return std::make_shared<FastScnn>(o);
}

std::shared_ptr<Segmenter> make_deeplab(const ModelOptions& cfg, int initial_classes) {
  DeepLabOptions o;
  o.heads = {initial_classes};
  o.depth = parse_resnet_depth(cfg.backbone);
  o.output_stride = cfg.output_stride;
  o.aspp_rates = cfg.aspp_rates;
  o.norm = parse_norm(cfg.norm);
  o.plus = cfg.name == "deeplabv3plus";
  o.aux = cfg.aux;
  o.layout = parse_deeplab_layout(cfg.layout);
  o.eval_pooling = cfg.mib_eval_pooling;
  return std::make_shared<DeepLab>(o);
}

std::shared_ptr<Segmenter> make_unet(const ModelOptions& cfg, int initial_classes) {
  UNetOptions o;
  o.heads = {initial_classes};
  o.channels = cfg.unet_channels;
  o.bilinear = cfg.unet_upsampling == "bilinear";
  o.norm = parse_norm(cfg.norm);
  o.aux = cfg.aux;
  o.dropout = cfg.dropout;
  return std::make_shared<UNet>(o);
}

std::shared_ptr<Segmenter> make_lraspp(const ModelOptions& cfg, int initial_classes) {
  CSEG_CHECK(parse_norm(cfg.norm) == Norm::bn,
             "model.norm '{}' is not available for lraspp_mobilenet_v3_large (only bn)", cfg.norm);
  CSEG_CHECK(!cfg.aux, "model.aux: lraspp_mobilenet_v3_large has no auxiliary head (as torchvision's)");
  LrasppOptions o;
  o.heads = {initial_classes};
  return std::make_shared<Lraspp>(o);
}

/// The model registry: config name -> constructor.
struct ModelEntry {
  const char* name;
  std::shared_ptr<Segmenter> (*make)(const ModelOptions&, int initial_classes);
};
const std::vector<ModelEntry>& registry() {
  static const std::vector<ModelEntry> table{
      {"fast_scnn", make_fast_scnn},
      {"deeplabv3", make_deeplab},
      {"deeplabv3plus", make_deeplab},
      {"unet", make_unet},
      {"lraspp_mobilenet_v3_large", make_lraspp},
  };
  return table;
}

}  // namespace

std::shared_ptr<Segmenter> make_model(const ModelOptions& cfg, int initial_classes) {
  for (const auto& e : registry())
    if (cfg.name == e.name) return e.make(cfg, initial_classes);
  fail("unknown model '{}'; known: {}", cfg.name, fmt::join(model_names(), ", "));
}

std::vector<std::string> model_names() {
  std::vector<std::string> names;
  for (const auto& e : registry()) names.push_back(e.name);
  return names;
}

torch::Device device_of(const Segmenter& model) {
  const auto params = model.parameters();
  return params.empty() ? torch::Device(torch::kCPU) : params.front().device();
}

void copy_state(Segmenter& dst, const Segmenter& src) {
  torch::NoGradGuard guard;
  auto sp = src.named_parameters(true);
  auto sb = src.named_buffers(true);
  for (auto& p : dst.named_parameters(true)) {
    const auto* s = sp.find(p.key());
    CSEG_CHECK(s && s->sizes() == p.value().sizes(), "copy_state: parameter '{}' does not match", p.key());
    p.value().copy_(*s);
  }
  for (auto& b : dst.named_buffers(true)) {
    const auto* s = sb.find(b.key());
    CSEG_CHECK(s && s->sizes() == b.value().sizes(), "copy_state: buffer '{}' does not match", b.key());
    b.value().copy_(*s);
  }
}

}  // namespace cseg::models

namespace cseg::models {

std::vector<std::string> Segmenter::latent_taps(const std::string& layer) const {
  fail("this model has no latent layer '{}' (latent replay: fast_scnn)", layer);
}

torch::Tensor Segmenter::forward_from(const std::string& layer, const std::vector<torch::Tensor>&, int64_t, int64_t) {
  fail("this model cannot run from a stored latent state at '{}' (latent replay: fast_scnn)", layer);
}

int head_index(const Segmenter& model, const std::string& key) {
  for (const auto& alias : model.head_aliases()) {
    const std::string prefix = alias.heads + ".";
    if (key.rfind(prefix, 0) != 0) continue;
    const auto rest = key.substr(prefix.size());
    const auto dot = rest.find('.');
    if (dot == std::string::npos || dot == 0) continue;
    try {
      return std::stoi(rest.substr(0, dot));
    } catch (const std::exception&) {
      continue;
    }
  }
  return -1;
}

void Segmenter::train_only_heads(const std::vector<int>& heads) {
  heads_only_ = true;
  for (auto& p : named_parameters(true)) {
    const int head = head_index(*this, p.key());
    p.value().set_requires_grad(head >= 0 && std::find(heads.begin(), heads.end(), head) != heads.end());
  }
  train(is_training());
}

void Segmenter::train_everything() {
  heads_only_ = false;
  for (auto& p : parameters(true)) p.set_requires_grad(true);
  train(is_training());
}

void Segmenter::train(bool on) {
  torch::nn::Module::train(on);
  if (!heads_only_ || !on) return;
  // The model itself stays in training mode (its forward may read is_training()); every part
  // below it runs as at evaluation. The heads are single convolutions: the mode changes nothing
  // in them.
  for (auto& child : children()) child->train(false);
}

void Segmenter::freeze_through(const std::string& layer) {
  CSEG_CHECK(layer.empty(), "this model cannot freeze its layers through '{}' (latent replay: fast_scnn)", layer);
}

}  // namespace cseg::models
