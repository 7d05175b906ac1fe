#include "cseg/adaptation/step_adaptation.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "cseg/adaptation/consistency.h"
#include "cseg/adaptation/optical_flow.h"
#include "cseg/adaptation/pseudo_labels.h"
#include "cseg/adaptation/temporal.h"
#include "cseg/core/clock.h"
#include "cseg/core/device.h"
#include "cseg/core/error.h"
#include "cseg/core/log.h"
#include "cseg/core/runtime.h"
#include "cseg/models/inference.h"
#include "cseg/models/layers.h"
#include "cseg/scenarios/scenario.h"

namespace cseg::adaptation {

namespace {

/// The student's scale for one iteration of step `step`, uniform in [1 - spread, 1 + spread];
/// drawn from (seed, step, iteration) so a resumed step draws the same.
double draw_student_scale(double spread, uint64_t seed, int step, int64_t iteration) {
  std::mt19937_64 rng(core::mix_seed(core::mix_seed(seed, 0x5CA1E, step), 0, uint64_t(iteration)));
  return std::uniform_real_distribution<double>(1.0 - spread, 1.0 + spread)(rng);
}

/// Self-training on an unlabelled environment: the teacher (the model as it ended the previous
/// step) labels what the student learns from.
class SelfTraining : public StepAdaptation {
 public:
  SelfTraining(const config::ExperimentConfig& cfg, Environment env, std::string log_name)
      : cfg_(cfg),
        a_(cfg.adaptation),
        device_(core::parse_device(cfg.device)),
        env_(std::move(env)),
        log_name_(std::move(log_name)) {}

  bool needs_teacher() const override { return true; }

  void prepare_data(const methods::StepContext& ctx, std::shared_ptr<const data::Dataset>& dataset,
                    data::LoaderOptions& lo) override {
    CSEG_CHECK(ctx.old_model,
               "step {}: an unlabelled environment needs a model to learn from (a labelled step "
               "before it)",
               ctx.step);
    const auto source = dataset;
    // Whole-frame pseudo-labels are made with OpenCV's flow on the host: logits come back there.
    const auto teacher = [&](const torch::Tensor& x) { return teacher_logits(ctx, x.to(device_)).cpu(); };
    if (fixed_labels()) {  // read by the loader as if they were the environment's labels
      if (a_.temporal) require_video(*source, "temporal");
      const char* kind = a_.temporal ? "temporal" : "fixed";
      TemporalLabelStats st;
      const auto t0 = core::Clock::now();
      auto maps = frame_pseudo_labels(*source, teacher, cfg_.augment.mean, cfg_.augment.std, a_.threshold,
                                      a_.class_fraction, a_.temporal, &st);
      const double seconds = core::seconds_since(t0);
      if (a_.temporal)
        log::info(
            "[{}] temporal pseudo-labels: {} frames, {} fused with the next frame (flow consistent on {:.0f} % "
            "of their pixels), {:.0f} % of pixels labelled, {:.1f} s",
            log_name_, st.frames, st.fused, 100 * st.consistent_fraction, 100 * st.labelled_fraction, seconds);
      else
        log::info("[{}] fixed pseudo-labels: {} whole frames labelled once for the step, {:.0f} % of pixels, {:.1f} s",
                  log_name_, st.frames, 100 * st.labelled_fraction, seconds);
      stats_ = {{"kind", kind},
                {"frames", st.frames},
                {"fused_with_next", st.fused},
                {"flow_consistent_fraction", st.consistent_fraction},
                {"labelled_fraction", st.labelled_fraction},
                {"seconds", seconds}};
      if (a_.score_pseudo_labels) stats_["score"] = score(ctx, maps);
      dataset =
          std::make_shared<data::RelabelledDataset>(source, std::move(maps), std::string(kind) + " pseudo-labels");
    } else if (a_.score_pseudo_labels) {
      // The teacher's labels on whole frames, each on its own: training labels augmented
      // batches, so this estimates the quality of what the student learns from.
      auto maps = frame_pseudo_labels(*source, teacher, cfg_.augment.mean, cfg_.augment.std, a_.threshold,
                                      a_.class_fraction, false);
      stats_ = {{"kind", a_.pseudo_labels}, {"score", score(ctx, maps)}};
    }
    if (a_.temporal_consistency > 0) {
      require_video(*source, "temporal_consistency");
      lo.next_frame = true;
      lo.prepare = [](data::Sample& s) { add_flow_to_next(s); };
    }
    if (a_.depth_edges > 0) {
      CSEG_CHECK(source->has_depth(), "adaptation.depth_edges: environment '{}' has no depth maps ({})", env_.name,
                 source->describe());
      lo.depth = true;
    }
  }

  void prepare_batch(const methods::StepContext& ctx, Batch& batch) override {
    own_samples_ = batch.size();  // before a method such as replay appends samples of its own
    soft_targets_ = torch::Tensor();
    // With labels fixed for the step (temporal or not) the loader brought them already.
    if (!fixed_labels() && a_.pseudo_labels == "hard")
      batch.labels = teacher_labels(ctx, batch.images);
    else if (!fixed_labels())
      soft_targets_ = teacher_logits(ctx, batch.images);
    // The student learns the clean image's labels from a differently lit copy.
    if (a_.student_jitter > 0)
      batch.images = photometric_jitter(batch.images, a_.student_jitter, cfg_.augment.mean, cfg_.augment.std);
  }

  void label_visited(const methods::StepContext& ctx, Batch& batch) override {
    if (!fixed_labels()) batch.labels = teacher_labels(ctx, batch.images);
  }

  models::ModelOutput forward(const methods::StepContext& ctx, const torch::Tensor& images,
                              const std::function<models::ModelOutput(const torch::Tensor&)>& forward) override {
    // Cross-consistency under scale: the student sees the batch resized, and its logits are
    // brought back to the size of the labels.
    if (a_.student_scale <= 0) return forward(images);
    const double scale = draw_student_scale(a_.student_scale, cfg_.seed, ctx.step, ctx.iteration);
    if (scale == 1.0) return forward(images);
    const int64_t h = images.size(2), w = images.size(3);  // at least 8 pixels a side
    auto out = forward(models::resize_to(images, std::max<int64_t>(8, std::llround(h * scale)),
                                         std::max<int64_t>(8, std::llround(w * scale))));
    out.logits = models::resize_to(out.logits, h, w);
    if (out.aux_logits.defined()) out.aux_logits = models::resize_to(out.aux_logits, h, w);
    return out;
  }

  void add_loss_terms(const methods::StepContext& ctx, const Batch& batch, const models::ModelOutput& out,
                      methods::LossTerms& terms) override {
    const auto own = out.logits.slice(0, 0, own_samples_);  // the environment's frames, not replayed ones
    if (soft_targets_.defined())
      terms.emplace_back("soft_pseudo_labels", soft_pseudo_label_loss(own, soft_targets_, a_.temperature));
    if (a_.temporal_consistency > 0) {  // the next frame's prediction is a target: no graph kept for it
      torch::Tensor next_logits;
      {
        torch::NoGradGuard no_grad;
        next_logits = models::float_logits(ctx.model->forward(batch.next_images)).logits;
      }
      terms.emplace_back(
          "temporal_consistency",
          a_.temporal_consistency * temporal_consistency_loss(own, next_logits, batch.flow, batch.flow_valid));
    }
    if (a_.depth_edges > 0)
      terms.emplace_back("depth_edges", a_.depth_edges * depth_edge_loss(own, batch.depth, a_.depth_edge_step));
  }

  nlohmann::json stats() const override { return stats_; }

 private:
  /// Whole-frame labels made once before the step (temporal ones fuse in the next frame).
  bool fixed_labels() const { return a_.temporal || a_.fixed_labels; }
  /// The teacher's logits (flip-averaged with adaptation.teacher_flip).
  torch::Tensor teacher_logits(const methods::StepContext& ctx, const torch::Tensor& images) const {
    torch::NoGradGuard no_grad;
    auto logits = ctx.old_model->forward(images).logits;
    if (a_.teacher_flip)  // the mirror image's prediction, mirrored back
      logits = 0.5 * (logits + ctx.old_model->forward(images.flip({3})).logits.flip({3}));
    return logits;
  }
  torch::Tensor teacher_labels(const methods::StepContext& ctx, const torch::Tensor& images) const {
    return hard_pseudo_labels(teacher_logits(ctx, images), a_.threshold, a_.class_fraction);
  }
  /// Video cues need the environment's frames grouped into sequences.
  void require_video(const data::Dataset& frames, const char* key) const {
    CSEG_CHECK(!frames.sequences().empty(),
               "adaptation.{}: environment '{}' has no video sequences ({}; FMNIST-Scenes writes them with --frames)",
               key, env_.name, frames.describe());
  }
  /// Pseudo-labels (one map per training frame) scored against the environment's masks.
  nlohmann::json score(const methods::StepContext& ctx, const std::vector<cv::Mat>& maps) const {
    const auto sc =
        score_pseudo_labels(maps, *env_.with_masks, ctx.scenario->train_labels(0), ctx.scenario->classes_after(0));
    log::info(
        "[{}] pseudo-labels of {} against its masks (adaptation.score_pseudo_labels): {:.1f} % of pixels "
        "labelled, {:.1f} % of them right, mIoU {:.1f}",
        log_name_, env_.name, 100 * sc.labelled_fraction, 100 * sc.accuracy, 100 * sc.miou);
    return {{"labelled_fraction", sc.labelled_fraction}, {"accuracy", sc.accuracy}, {"miou", sc.miou}};
  }

  const config::ExperimentConfig& cfg_;
  const config::AdaptationConfig& a_;
  const torch::Device device_;
  Environment env_;
  std::string log_name_;
  nlohmann::json stats_;
  int64_t own_samples_ = 0;
  torch::Tensor soft_targets_;
};

}  // namespace

std::unique_ptr<StepAdaptation> make_step_adaptation(const config::ExperimentConfig& cfg, bool labelled,
                                                     Environment environment, std::string log_name) {
  if (labelled) return std::make_unique<StepAdaptation>();
  return std::make_unique<SelfTraining>(cfg, std::move(environment), std::move(log_name));
}

}  // namespace cseg::adaptation
