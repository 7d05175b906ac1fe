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
/// Options: memory (images, 100), policy, selection (ReplayBuffer), ratio / replay_batch, alpha, beta.
#include <memory>

#include "cseg/methods/method.h"
#include "cseg/methods/options.h"
#include "cseg/methods/replay_buffer.h"

namespace cseg::methods {

class Rehearsal : public Method {
 public:
  enum class Kind { Replay, DER, DERpp };
  Rehearsal(Kind kind, Options o);
  std::string name() const override;
  void before_forward(StepContext&, Batch&) override;
  void add_loss_terms(StepContext&, const Batch&, const models::ModelOutput&, LossTerms&) override;
  void on_step_end(StepContext&) override;
  void save(torch::serialize::OutputArchive& a) const override { buffer_->save(a); }
  void load(torch::serialize::InputArchive& a) override { buffer_->load(a); }
  const ReplayBuffer& buffer() const { return *buffer_; }
  nlohmann::json stats() const override {
    return {{"replay_images", buffer_->size()}, {"replay_bytes", buffer_->bytes()}};
  }

 private:
  Kind kind_;
  double ratio_, alpha_, beta_;
  int replay_batch_;
  std::unique_ptr<ReplayBuffer> buffer_;
};

}  // namespace cseg::methods
