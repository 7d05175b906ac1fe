#pragma once
/// Fast-SCNN (Poudel et al., BMVC 2019). Module and parameter names mirror the reference PyTorch
/// implementation (learning_to_downsample, global_feature_extractor, feature_fusion, classifier,
/// auxlayer) so its state dicts map key for key; the only change is the classifier's last conv,
/// which becomes one head per step: `classifier.heads.<k>` (reference: `classifier.conv.1`) and
/// `aux_heads.<k>` (reference: `auxlayer.4`).
///
/// Feature taps in ModelOutput::features: "learning_to_downsample" (1/8, 64 ch),
/// "global_feature_extractor" (1/32, 128 ch), "feature_fusion" (1/8, 128 ch),
/// "decoder" (1/8, 128 ch, input of the heads), "encoder" (= global_feature_extractor),
/// "logits_lowres" (1/8).
#include "cseg/models/layers.h"
#include "cseg/models/segmenter.h"

namespace cseg::models {

struct FastScnnOptions {
  std::vector<int> heads{21};  ///< classes per step head
  bool aux = false;
  double dropout = 0.1;
};

class FastScnn : public Segmenter {
 public:
  explicit FastScnn(FastScnnOptions options);
  ModelOutput forward(const torch::Tensor& x) override;
  torch::Tensor encode(const torch::Tensor& x) override;
  void add_head(int num_new) override;
  std::vector<int> head_sizes() const override { return options_.heads; }
  std::vector<torch::Tensor> encoder_parameters() override;
  std::shared_ptr<Segmenter> make_like() const override;
  std::vector<std::string> backbone_prefixes() const override {
    return {"learning_to_downsample.", "global_feature_extractor."};
  }
  std::vector<HeadAlias> head_aliases() const override;
  std::vector<std::string> stage_taps() const override {
    return {"learning_to_downsample", "global_feature_extractor", "feature_fusion", "decoder"};
  }
  std::vector<std::string> latent_layers() const override;
  std::vector<std::string> latent_taps(const std::string& layer) const override;
  torch::Tensor forward_from(const std::string& layer, const std::vector<torch::Tensor>& latents, int64_t h,
                             int64_t w) override;
  void freeze_through(const std::string& layer) override;

 private:
  FastScnnOptions options_;
  std::shared_ptr<torch::nn::Module> learning_to_downsample_;
  std::shared_ptr<torch::nn::Module> global_feature_extractor_;
  std::shared_ptr<torch::nn::Module> feature_fusion_;
  std::shared_ptr<torch::nn::Module> classifier_;
  torch::nn::ModuleList heads_{nullptr};
  torch::nn::Sequential auxlayer_{nullptr};
  torch::nn::ModuleList aux_heads_{nullptr};
  torch::nn::Dropout dropout_{nullptr};
  int frozen_depth_ = 0;  ///< stages 0..frozen_depth_-1 are frozen (freeze_through)

  /// Runs stage `depth` (its `module`) frozen or not.
  template <typename Fn>
  torch::Tensor stage(int depth, torch::nn::Module& module, Fn&& run);
};

}  // namespace cseg::models
