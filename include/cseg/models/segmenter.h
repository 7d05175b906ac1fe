#pragma once
/// The segmenter interface every model implements: logits at input resolution from per-step
/// classifier heads (one 1x1 conv per step, concatenated), plus named feature taps for methods.
#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cseg/core/error.h"
#include "cseg/models/options.h"

namespace cseg::models {

struct ModelOutput {
  torch::Tensor logits;                           ///< [N, C, H, W] at input resolution, C = classes seen so far
  torch::Tensor aux_logits;                       ///< [N, C, H, W] or undefined (auxiliary head off)
  std::map<std::string, torch::Tensor> features;  ///< named intermediate maps (see each model)
  /// The intermediate map `name`; a clear error when the model kept none by that name.
  const torch::Tensor& feature(const std::string& name) const {
    auto it = features.find(name);
    CSEG_CHECK(it != features.end(),
               "the model output has no feature map '{}' (the model kept no feature taps: "
               "a method that reads them must say so with Method::needs_features(); or the model has no such tap)",
               name);
    return it->second;
  }
};

class Segmenter : public torch::nn::Module {
 public:
  /// x: [N, 3, H, W] normalised images.
  virtual ModelOutput forward(const torch::Tensor& x) = 0;
  /// The encoder's output alone, [N, C, h, w] (the "encoder" feature tap), without running the
  /// decoder: what classification pretraining (pretrain/) trains, through a pooled linear layer.
  virtual torch::Tensor encode(const torch::Tensor& x) = 0;
  /// Appends a classifier head for `num_new` classes (a new step).
  virtual void add_head(int num_new) = 0;
  /// Classes per head, in step order.
  virtual std::vector<int> head_sizes() const = 0;
  int num_classes() const {
    int n = 0;
    for (int s : head_sizes()) n += s;
    return n;
  }
  /// Parameters of the encoder (the rest count as decoder/head for learning rates).
  virtual std::vector<torch::Tensor> encoder_parameters() = 0;
  /// A fresh model with the same options and heads (state not copied): for teachers and resume.
  virtual std::shared_ptr<Segmenter> make_like() const = 0;

  /// State-dict key prefixes of the pretrainable encoder ("backbone." for DeepLab), for loading
  /// a backbone only (weights::LoadMode::backbone).
  virtual std::vector<std::string> backbone_prefixes() const = 0;

  /// Where the reference implementation keeps the single classifier conv that cseg splits into
  /// per-step heads: e.g. torchvision's `classifier.4` is cseg's `classifier.heads.<k>`. Weight
  /// import maps one onto the other, splitting the reference's rows over the heads.
  struct HeadAlias {
    std::string reference;  ///< module path of the reference's conv ("classifier.4")
    std::string heads;      ///< module path of cseg's ModuleList of heads ("classifier.heads")
    /// Further reference convs whose outputs the reference adds to `reference`'s, each reading
    /// the next channels of the heads' input: their weights join `reference`'s side by side (along
    /// the input channels) and their biases add (LR-ASPP's low_classifier + high_classifier).
    std::vector<std::string> joined = {};
  };
  virtual std::vector<HeadAlias> head_aliases() const = 0;

  /// Feature taps of the network's stages in forward order (the maps PLOP's POD distils, before
  /// the logits). Every model also exposes "encoder" (the encoder's output, ILT's distillation
  /// target) and "logits_lowres" (logits before the final upsampling).
  virtual std::vector<std::string> stage_taps() const = 0;

  /// Whether forward fills ModelOutput::features (on by default: methods read them). Off for a
  /// model that only predicts (prepare_for_inference): intermediate maps are then freed as soon
  /// as the next layer has used them, which lowers peak memory.
  void set_feature_taps(bool on) { feature_taps_ = on; }
  bool feature_taps() const { return feature_taps_; }

  // Latent replay: a buffer stores the network's state at a layer instead of the image, and
  // the rest of the forward pass runs from it. Only models that implement these offer it.
  /// Layers whose output can be stored, in forward order (empty: no latent replay).
  virtual std::vector<std::string> latent_layers() const { return {}; }
  /// The feature taps (ModelOutput::features) that make up the state at `layer`.
  virtual std::vector<std::string> latent_taps(const std::string& layer) const;
  /// Logits [N, C, h, w] from the stored state at `layer` (the taps' tensors, in order).
  virtual torch::Tensor forward_from(const std::string& layer, const std::vector<torch::Tensor>& latents, int64_t h,
                                     int64_t w);
  /// Freezes the layers up to `layer` (no gradients, normalisation statistics fixed), so the
  /// states stored from them stay what the model computes; "" unfreezes.
  virtual void freeze_through(const std::string& layer);

  /// Trains only the classifier heads of the steps in `heads` (and their auxiliary heads): every
  /// other parameter stops taking gradients, and every other module runs as at evaluation
  /// (normalisation statistics fixed, no dropout), also after a later train(). DFT* and SSUL
  /// freeze the network and the old classifiers this way (SSUL's --freeze --bn_freeze).
  void train_only_heads(const std::vector<int>& heads);
  /// Undoes train_only_heads: the whole model trains.
  void train_everything();
  bool trains_heads_only() const { return heads_only_; }
  /// Module::train, keeping the parts frozen by train_only_heads in evaluation mode.
  void train(bool on = true) override;

 protected:
  bool feature_taps_ = true;
  bool heads_only_ = false;  ///< train_only_heads is in force
};

/// The step of head parameter `key` when it belongs to one of the model's heads (a
/// Segmenter::head_aliases `heads` list, e.g. "classifier.heads.2.weight" -> 2), else -1.
int head_index(const Segmenter& model, const std::string& key);

/// Builds the model `cfg.name` with one head of `initial_classes` (step 0, background included).
std::shared_ptr<Segmenter> make_model(const ModelOptions& cfg, int initial_classes);

/// Copies parameters and buffers from `src` into `dst` (same architecture and heads), across
/// devices too.
void copy_state(Segmenter& dst, const Segmenter& src);

/// The device the model's parameters are on (inputs must go there).
torch::Device device_of(const Segmenter& model);

}  // namespace cseg::models
