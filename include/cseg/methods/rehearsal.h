#pragma once
/// Rehearsal methods over the shared ReplayBuffer. At the end of each step the buffer is offered
/// the step's training crops (one pass, with the trained model's predictions for the selection
/// and DER's logits); at later steps the stored crops are replayed.
///
///   replay : image replay. Each batch of B current crops gets round(B * ratio / (1 - ratio))
///            stored crops appended (ratio = replayed share of the batch, default 0.25), trained
///            with the same loss; costs exactly its extra images.
///   der    : dark experience replay. A separate replay batch (replay_batch crops) adds
///            alpha * MSE(current low-resolution logits, stored logits); channels of classes
///            added after storage take the current model's detached values. alpha 0.8 (BACS's
///            setting; Avalanche uses 0.1).
///   der++  : der + beta * CE(replayed crops, stored labels) with background and classes added
///            after storage weighted 0 (beta 0.5).
///   latent_replay : the buffer keeps the model's state at `layer` (Fast-SCNN: learning_to_downsample,
///            global_feature_extractor or feature_fusion) instead of the crop, and replays it
///            through the rest of the network (Pellegrini et al.'s latent replay). From step 1 on
///            the layers up to `layer` are frozen (freeze: true), so stored states stay what the
///            network computes. Each batch of B crops adds round(B * ratio / (1 - ratio)) stored
///            states, their cross-entropy weighted n / B (image replay's weight per sample).
/// Options: memory (images, 100), policy, selection (ReplayBuffer), ratio / replay_batch, alpha,
/// beta; replay and latent_replay: ratio_mode; latent_replay: layer, freeze.
#include <memory>

#include "cseg/methods/method.h"
#include "cseg/methods/options.h"
#include "cseg/methods/replay_buffer.h"

namespace cseg::methods {

/// DER++'s cross-entropy targets for replayed crops: their stored labels [N, H, W], with a label
/// the model did not have when crop i was stored (>= seen[i] classes) ignored (255). With the
/// background shift (class-incremental steps > 0) label 0 is ignored too: a stored crop's
/// background may hide classes learnt since. In domain-incremental runs label 0 is a class like
/// any other (background of a room, or Cityscapes' road) and is learnt.
torch::Tensor der_ce_target(const torch::Tensor& labels, const std::vector<int64_t>& seen, bool background_shift);

/// Per crop, the score the replay buffer's `selection` ranks by (higher kept first): logits
/// [N, C, H, W], labels [N, H, W] (255 ignored) -> [N].
torch::Tensor selection_priority(const std::string& selection, const torch::Tensor& logits,
                                 const torch::Tensor& labels);

/// For a method that embeds a rehearsal part (SSUL-M, BACS): the buffer's options read from the
/// method's own (memory, default `default_memory`; policy, default `default_policy`; selection,
/// random), to pass on as the part's options.
std::map<std::string, std::string> buffer_options(Options& o, int default_memory,
                                                  const std::string& default_policy = "class_balanced");

class Rehearsal : public Method {
 public:
  enum class Kind { Replay, DER, DERpp, Latent };
  /// `owner`: the method this one is part of (SSUL-M, BACS), named in its log lines instead.
  Rehearsal(Kind kind, Options o, std::string owner = "");
  std::string name() const override;
  /// The buffer is empty during step 0 and filled by on_step_end from the trained model.
  bool first_step_is_finetuning() const override { return true; }
  void on_step_begin(StepContext&) override;
  void before_forward(StepContext&, Batch&) override;
  void add_loss_terms(StepContext&, const Batch&, const models::ModelOutput&, LossTerms&) override;
  void on_step_end(StepContext&) override;
  /// While training, plain replay reads the logits only; DER reads the low-resolution logits and
  /// latent replay its latents. (Filling the buffer at a step's end turns the taps on itself.)
  bool needs_features() const override { return kind_ != Kind::Replay; }
  void save(torch::serialize::OutputArchive& a) const override { buffer_->save(a); }
  void load(torch::serialize::InputArchive& a) override { buffer_->load(a); }
  const ReplayBuffer& buffer() const { return *buffer_; }
  nlohmann::json stats() const override {
    return {{"replay_images", buffer_->size()}, {"replay_bytes", buffer_->bytes()}};
  }

 private:
  void add_latent_replay(StepContext& ctx, const Batch& batch, LossTerms& terms);
  /// Replayed share of a batch at `step` (ratio_mode), and the stored items to replay.
  double replay_share(int step) const;
  std::vector<size_t> draw_replay(const StepContext& ctx, int64_t batch_size, uint64_t salt) const;

  Kind kind_;
  std::string owner_;
  double ratio_, alpha_, beta_;
  int replay_batch_;
  /// replay, latent_replay: fixed (ratio of every batch), per_step (ratio per earlier step, at
  /// most 0.9), adaptive (1 - 1/n after n steps: every step an equal share), focus_first (ratio,
  /// all from the first step's items).
  std::string ratio_mode_ = "fixed";
  std::string layer_;   ///< latent replay: where the stored state is taken
  bool freeze_ = true;  ///< latent replay: freeze the layers up to layer_ from step 1 on
  std::unique_ptr<ReplayBuffer> buffer_;
};

}  // namespace cseg::methods
