#include "cseg/methods/cotta.h"

#include <torch/torch.h>

#include "cseg/core/error.h"
#include "cseg/methods/state_archive.h"
#include "cseg/models/segmenter.h"

namespace cseg::methods {

namespace {

/// The model's parameters and buffers by name (the live tensors, not copies).
TensorMap live_state(const models::Segmenter& model) {
  TensorMap m;
  for (const auto& p : model.named_parameters()) m[p.key()] = p.value();
  for (const auto& b : model.named_buffers()) m[b.key()] = b.value();
  return m;
}

TensorMap copied(const TensorMap& m) {
  TensorMap out;
  for (const auto& [k, t] : m) out[k] = t.detach().clone();
  return out;
}

/// Writes `values` into the model's tensors of the same names (all of them must be there).
void assign(const models::Segmenter& model, const TensorMap& values, const char* what) {
  torch::NoGradGuard no_grad;
  for (auto& [k, t] : live_state(model)) {
    auto it = values.find(k);
    CSEG_CHECK(it != values.end() && it->second.sizes() == t.sizes(),
               "cotta: the saved {} has no tensor '{}' of shape {} (a checkpoint of another model?)", what, k,
               fmt::format("{}", t.sizes()));
    t.copy_(it->second);
  }
}

}  // namespace

CoTTA::CoTTA(Options o)
    : ema_(o.real("ema", 0.999)),
      restore_(o.real("restore", 0.01)),
      anchor_confidence_(o.real("anchor_confidence", 0.9)),
      min_scale_(o.real("min_scale", 0.5)),
      max_scale_(o.real("max_scale", 1.75)),
      num_scales_(o.integer("num_scales", 6)) {
  o.finish();
  CSEG_CHECK(ema_ >= 0 && ema_ <= 1, "method_options.cotta.ema must be in [0, 1] (got {})", ema_);
  CSEG_CHECK(restore_ >= 0 && restore_ <= 1, "method_options.cotta.restore must be in [0, 1] (got {})", restore_);
  CSEG_CHECK(num_scales_ >= 0, "method_options.cotta.num_scales must be >= 0 (got {})", num_scales_);
  CSEG_CHECK(min_scale_ > 0 && max_scale_ >= min_scale_,
             "method_options.cotta: need 0 < min_scale <= max_scale (got {} and {})", min_scale_, max_scale_);
}

torch::Tensor CoTTA::soft_cross_entropy(const torch::Tensor& student, const torch::Tensor& teacher) {
  CSEG_CHECK(student.sizes() == teacher.sizes(), "cotta: student logits {} and teacher logits {} differ in shape",
             fmt::format("{}", student.sizes()), fmt::format("{}", teacher.sizes()));
  const auto target = torch::softmax(teacher.to(torch::kFloat), 1);
  return -(target * torch::log_softmax(student.to(torch::kFloat), 1)).sum(1).mean();
}

void CoTTA::ema_update(const TensorMap& teacher, const TensorMap& student, double alpha) {
  torch::NoGradGuard no_grad;
  for (const auto& [k, t] : teacher) t.mul_(alpha).add_(student.at(k).detach(), 1 - alpha);
}

void CoTTA::stochastic_restore(const TensorMap& weights, const TensorMap& source, double p) {
  if (p <= 0) return;
  torch::NoGradGuard no_grad;
  for (const auto& [k, w] : weights) {
    const auto back = torch::rand(w.sizes(), w.options().dtype(torch::kFloat)) < p;
    w.copy_(torch::where(back, source.at(k).to(w.device(), w.scalar_type()), w));
  }
}

void CoTTA::on_step_begin(StepContext& ctx) {
  if (!student_.empty()) {  // the model holds the teacher's weights since the last step's end
    assign(*ctx.model, student_, "student");
    student_.clear();
  }
  adapting_ = !ctx.labelled;
  ctx.model->train_everything();
  batches_ = averaged_ = 0;
  if (!adapting_) return;
  if (source_.empty()) source_ = copied(live_state(*ctx.model));  // the first unlabelled step: the source
  if (teacher_.empty()) teacher_ = copied(live_state(*ctx.model));
  teacher_model_.reset();  // made afresh from teacher_ (a resumed step loads its own)
}

void CoTTA::ready_copies(const models::Segmenter& model) {
  if (teacher_model_) return;
  const auto make = [&](const TensorMap& values, const char* what) {
    auto copy = model.make_like();
    copy->to(models::device_of(model));
    for (auto& p : copy->parameters()) p.set_requires_grad(false);
    assign(*copy, values, what);
    copy->train();  // batch statistics, as the student
    return copy;
  };
  teacher_model_ = make(teacher_, "teacher");
  anchor_model_ = make(source_, "source");
}

torch::Tensor CoTTA::teacher_logits(const torch::Tensor& images, int classes) {
  torch::NoGradGuard no_grad;
  auto logits = teacher_model_->forward(images).logits.narrow(1, 0, classes).to(torch::kFloat);
  const auto anchor = anchor_model_->forward(images).logits.narrow(1, 0, classes);
  const double confidence = torch::softmax(anchor.to(torch::kFloat), 1).amax(1).mean().item<double>();
  ++batches_;
  if (confidence >= anchor_confidence_ || num_scales_ == 0) return logits;
  ++averaged_;
  const auto size = std::vector<int64_t>{images.size(2), images.size(3)};
  auto sum = logits.clone();
  for (int i = 0; i < num_scales_; ++i) {
    const double s = num_scales_ == 1 ? min_scale_ : min_scale_ + (max_scale_ - min_scale_) * i / (num_scales_ - 1);
    const auto flip = (torch::rand({images.size(0)}) < 0.5).to(images.device()).view({-1, 1, 1, 1});
    auto x = torch::where(flip, images.flip({3}), images);
    x = torch::nn::functional::interpolate(
        x, torch::nn::functional::InterpolateFuncOptions()
               .size(std::vector<int64_t>{std::max<int64_t>(8, std::llround(s * double(size[0]))),
                                          std::max<int64_t>(8, std::llround(s * double(size[1])))})
               .mode(torch::kBilinear)
               .align_corners(false));
    auto y = teacher_model_->forward(x).logits.narrow(1, 0, classes).to(torch::kFloat);
    y = torch::nn::functional::interpolate(
        y, torch::nn::functional::InterpolateFuncOptions().size(size).mode(torch::kBilinear).align_corners(false));
    sum += torch::where(flip, y.flip({3}), y);
  }
  return sum / double(num_scales_ + 1);
}

torch::Tensor CoTTA::task_loss(StepContext& ctx, const Batch& batch, const models::ModelOutput& out) {
  if (!adapting_) return Method::task_loss(ctx, batch, out);
  ready_copies(*ctx.model);
  const int classes = int(out.logits.size(1));
  return soft_cross_entropy(out.logits, teacher_logits(batch.images, classes));
}

void CoTTA::after_optimizer_step(StepContext& ctx) {
  if (!adapting_) return;
  ready_copies(*ctx.model);
  TensorMap student, teacher, weights, source;
  for (const auto& p : ctx.model->named_parameters()) student[p.key()] = p.value();
  for (const auto& p : teacher_model_->named_parameters()) teacher[p.key()] = p.value();
  ema_update(teacher, student, ema_);
  // Restore the student's trainable weights (the paper: every weight and bias).
  for (const auto& [k, t] : student)
    if (t.requires_grad()) {
      weights[k] = t;
      source[k] = source_.at(k);
    }
  stochastic_restore(weights, source, restore_);
}

void CoTTA::on_step_end(StepContext& ctx) {
  if (!adapting_) return;
  ready_copies(*ctx.model);
  // Predict with the teacher: the model takes its weights, the student's wait for the next step.
  student_ = copied(live_state(*ctx.model));
  teacher_ = copied(live_state(*teacher_model_));
  assign(*ctx.model, teacher_, "teacher");
  teacher_model_.reset();
  anchor_model_.reset();
  adapting_ = false;
}

nlohmann::json CoTTA::stats() const {
  if (batches_ == 0) return nlohmann::json::object();
  return {{"cotta_batches", batches_}, {"cotta_augmented_batches", averaged_}};
}

void CoTTA::save(torch::serialize::OutputArchive& a) const {
  save_tensor_map(a, "source", source_);
  save_tensor_map(a, "teacher", teacher_model_ ? copied(live_state(*teacher_model_)) : teacher_);
  save_tensor_map(a, "student", student_);
}

void CoTTA::load(torch::serialize::InputArchive& a) {
  load_tensor_map(a, "source", source_);
  load_tensor_map(a, "teacher", teacher_);
  load_tensor_map(a, "student", student_);
  teacher_model_.reset();
  anchor_model_.reset();
}

}  // namespace cseg::methods
