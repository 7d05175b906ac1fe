// One continual step: its context, data and adaptation, the model readied, the optimiser and
// budget, resume and shared step 0, then the epochs of iterations, validation and checkpoints.
#include <cmath>
#include <filesystem>
#include <numeric>
#include <optional>

#include "cseg/adaptation/novelty.h"
#include "cseg/adaptation/step_adaptation.h"
#include "cseg/core/clock.h"
#include "cseg/core/error.h"
#include "cseg/core/files.h"
#include "cseg/core/log.h"
#include "cseg/core/runtime.h"
#include "cseg/data/loader.h"
#include "cseg/distributed/process_group.h"
#include "cseg/distributed/sync_batch_norm.h"
#include "cseg/engine/checkpoint.h"
#include "cseg/engine/evaluator.h"
#include "cseg/engine/optimizer.h"
#include "cseg/engine/recorder.h"
#include "cseg/engine/trainer.h"
#include "cseg/logging/progress.h"

namespace fs = std::filesystem;

namespace cseg::engine {

using core::Clock;
using core::seconds_since;

namespace {

struct SyncBatchNormScope {  // installed while a step trains, whatever ends it
  explicit SyncBatchNormScope(distributed::ProcessGroup* g) { distributed::set_sync_batch_norm_group(g); }
  ~SyncBatchNormScope() { distributed::set_sync_batch_norm_group(nullptr); }
};

}  // namespace

/// Everything one step's training holds, in the order train_step makes it.
struct StepRun {
  int k = 0;
  methods::StepContext ctx;
  StepTrainData data;
  std::unique_ptr<adaptation::StepAdaptation> adaptation;
  std::shared_ptr<models::Segmenter> teacher;  ///< ctx.old_model's owner
  data::LoaderOptions loader_options;
  std::unique_ptr<data::Loader> loader;
  int64_t total = 0, per_epoch = 0;  ///< the step's budget in iterations; batches per epoch
  std::vector<double> base_lrs;      ///< per parameter group, before the schedule
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  TrainState state;
  std::string last;                            ///< the step's latest checkpoint (step<k>_last.pt)
  std::unique_ptr<core::FileLock> step0_lock;  ///< train.shared_step0: held until step 0 is stored
  std::string step0_file;
  Trainer::StepTiming timing;
  std::optional<core::GradScaler> scaler;  ///< fp16 only: a fresh scale each step, kept across a resume
  std::unique_ptr<distributed::GradientAverager> averager;
  std::vector<torch::Tensor> buffers;  ///< data-parallel: rank 0's BatchNorm statistics each iteration
  std::unique_ptr<SyncBatchNormScope> sync_bn;
  std::unique_ptr<TrainIteration> iteration;
  std::unique_ptr<logging::Progress> progress;
  double loss_avg = 0;
  Clock::time_point last_saved = Clock::now();
};

namespace {

/// train.checkpoint_every / checkpoint_minutes: a checkpoint within an epoch is due (the end of an
/// epoch has its own).
bool mid_epoch_checkpoint_due(const config::TrainConfig& tc, const StepRun& run) {
  const int64_t it = run.state.iteration;
  const bool epoch_ends = it == run.total || it == int64_t(run.state.epoch + 1) * run.per_epoch;
  return !epoch_ends && ((tc.checkpoint_every > 0 && it % tc.checkpoint_every == 0) ||
                         (tc.checkpoint_minutes > 0 && seconds_since(run.last_saved) >= 60 * tc.checkpoint_minutes));
}

}  // namespace

Trainer::StepTiming Trainer::train_step(int k) {
  StepRun run;
  run.k = k;
  run.ctx = step_context(k);
  auto& ctx = run.ctx;
  run.data = step_train_data(data_, k, method_.data_policy() == methods::DataPolicy::Cumulative);
  ctx.labelled = run.data.labelled;
  if (data_.domain() && !run.data.labelled && cfg_.adaptation.detect && k > 0) detect_arrival(run);
  const adaptation::Environment env =
      data_.domain() ? adaptation::Environment{data_.environments[k].name, data_.environments[k].train_with_masks}
                     : adaptation::Environment{};
  run.adaptation = adaptation::make_step_adaptation(cfg_, run.data.labelled, env, method_.name());
  // On a resume model_ holds step k-1's checkpoint here; the mid-step state is loaded below.
  run.teacher = ready_step_model(*model_, ctx, method_.needs_old_model() || run.adaptation->needs_teacher(),
                                 method_.needs_features(), cfg_.model, device_);
  auto& lo = run.loader_options;
  lo.batch_size = cfg_.train.batch_size;
  lo.train = true;
  lo.workers = cfg_.train.workers;
  lo.prefetch = cfg_.train.prefetch;
  lo.seed = core::mix_seed(cfg_.seed, 0xDA7A, k);
  lo.augment = cfg_.augment;
  lo.lut = run.data.lut;
  lo.saliency = method_.needs_saliency();
  if (group_) {
    lo.shard_rank = group_->rank();
    lo.shard_count = group_->size();
  }
  run.adaptation->prepare_data(ctx, run.data.dataset, lo);
  ctx.visit_train_data = [this, &run](const std::function<void(const Batch&)>& fn) {
    if (run.data.images.empty()) return;  // an arrival the detector missed: nothing to visit
    data::LoaderOptions vo = run.loader_options;
    vo.shard_rank = 0, vo.shard_count = 1;  // every process sees all of it, as one process would
    vo.seed = core::mix_seed(cfg_.seed, 0x7151, run.k);
    vo.depth = vo.next_frame = false;  // a method's pass needs images and labels only
    vo.prepare = nullptr;
    data::Loader visit(*run.data.dataset, run.data.images, vo);
    visit.start_epoch(0);
    while (auto b = visit.next()) {
      b->to(device_);
      run.adaptation->label_visited(run.ctx, *b);  // e.g. what a replay buffer keeps
      fn(*b);
    }
  };
  core::seed_torch(core::mix_seed(cfg_.seed, 0x57E9, k));
  method_.on_step_begin(ctx);
  if (!run.data.images.empty()) {
    run.loader = std::make_unique<data::Loader>(*run.data.dataset, run.data.images, lo);
    run.per_epoch = static_cast<int64_t>(run.loader->batches_per_epoch());
    run.total = step_iterations(cfg_.train, k, ctx.num_classes - ctx.num_old_classes, run.per_epoch);
  }  // else an arrival the detector missed: the step trains nothing and the model stays as it was
  ctx.total_iterations = run.total;
  ctx.iterations_per_epoch = run.per_epoch;
  const double lr = step_learning_rate(cfg_.optim, k);
  run.optimizer = make_step_optimizer(*model_, cfg_.optim, lr, run.base_lrs, method_.parameters());
  resume_step(run);
  take_shared_step0(run);
  log::info("[{}] step {}: {} | {} images | {} iterations ({} per epoch) | lr {}", method_.name(), k,
            run.data.description, run.data.images.size(), run.total, run.per_epoch, lr);
  run.timing.pseudo_labels = run.adaptation->stats();
  run.timing.train_images = run.data.images.size();
  run.progress = std::make_unique<logging::Progress>(fmt::format("[{}] step {}", method_.name(), k), run.total,
                                                     cfg_.train.log_every);
  recorder_->begin_step(k);
  if (cfg_.train.precision == "fp16") {
    run.scaler.emplace();
    if (run.state.loss_scaler) run.scaler->restore(*run.state.loss_scaler);
  }
  join_processes(run);
  run.iteration = std::make_unique<TrainIteration>(
      cfg_, *model_, method_, *run.adaptation, *run.optimizer,
      TrainIteration::Options{run.scaler ? &*run.scaler : nullptr, run.averager.get(), group_ != nullptr});
  model_->train();
  release_gradients(*run.optimizer);  // none left from before the step (a method's own backward pass, say)
  train_epochs(run);
  finish_step(run);
  return run.timing;
}

methods::StepContext Trainer::step_context(int k) const {
  const auto& sc = *data_.scenario;
  methods::StepContext ctx;
  ctx.step = k;
  ctx.num_old_classes = k == 0 ? 0 : sc.classes_after(data_.scenario_step(k - 1));
  ctx.num_classes = sc.classes_after(data_.scenario_step(k));  // domain scenarios: every class from the start
  ctx.first_new_label = data_.domain() ? 0 : ctx.num_old_classes;
  ctx.scenario = &sc;
  ctx.config = &cfg_;
  return ctx;
}

void Trainer::detect_arrival(StepRun& run) {
  // Detect -> adapt: the robot starts adapting where the detector notices the room changed, not
  // where the benchmark knows it did; that known boundary only scores the detection. The model is
  // the one the previous step ended with (also on a resume: evaluation is deterministic).
  const auto& a = cfg_.adaptation;
  const auto& before = data_.environments[run.k - 1].train;
  const auto& here = data_.environments[run.k];
  const size_t n = before.dataset->size();
  const size_t h = std::min(n, size_t(a.detect_history));
  std::vector<size_t> tail(h);
  std::iota(tail.begin(), tail.end(), n - h);
  const auto eval = method_eval_options(run.ctx.num_classes);
  // Each signal watched (detect_signal either: both, and the first to confirm a change starts the
  // step; their false alarms add up).
  nlohmann::json by_signal = nlohmann::json::object();
  adaptation::ArrivalDetection d;
  for (const std::string signal : {"uncertainty", "features"}) {
    if (a.detect_signal != signal && a.detect_signal != "either") continue;
    std::vector<double> history, arriving;
    if (signal == "features") {
      // Both parts scored against the known room's features (the history, in-sample).
      const auto known = frame_features(*model_, *before.dataset, tail, eval, a.detect_tap);
      history = adaptation::feature_shift(known, known);
      arriving = adaptation::feature_shift(
          known, frame_features(*model_, *here.train.dataset, run.data.images, eval, a.detect_tap));
    } else {
      history = frame_uncertainty(*model_, *before.dataset, tail, eval);
      arriving = frame_uncertainty(*model_, *here.train.dataset, run.data.images, eval);
    }
    const auto one = adaptation::locate_arrival(history, arriving, a.detector);
    by_signal[signal] = {{"detected_at", one.detected_at},
                         {"false_alarms", one.false_alarms},
                         {"history_mean", one.history_mean},
                         {"arriving_mean", one.arriving_mean}};
    if (one.detected_at >= 0 && (d.detected_at < 0 || one.detected_at < d.detected_at)) d.detected_at = one.detected_at;
    d.false_alarms += one.false_alarms;
    d.history_mean = one.history_mean, d.arriving_mean = one.arriving_mean;  // the last signal's, for the log
  }
  model_->train();
  const size_t frames = run.data.images.size();
  run.timing.detection = {{"signal", a.detect_signal},
                          {"history_frames", h},
                          {"frames", frames},
                          {"detected", d.detected_at >= 0},
                          // The arriving frame at which the change was confirmed, 1-based: the
                          // frames the robot saw in the new room before it could start adapting.
                          {"delay_frames", d.detected_at >= 0 ? nlohmann::json(d.detected_at + 1) : nlohmann::json()},
                          {"false_alarms", d.false_alarms},
                          {"history_mean", d.history_mean},
                          {"arriving_mean", d.arriving_mean},
                          {"by_signal", by_signal}};
  if (d.detected_at < 0) {
    run.data.images.clear();
    log::warn(
        "[{}] step {}: the detector did not notice the arrival in {} (mean {} {:.3f} after {:.3f} in "
        "{}; {} false alarm(s)): the step does not adapt",
        method_.name(), run.k, here.name, a.detect_signal, d.arriving_mean, d.history_mean,
        data_.environments[run.k - 1].name, d.false_alarms);
    return;
  }
  run.data.images.erase(run.data.images.begin(), run.data.images.begin() + d.detected_at);
  log::info(
      "[{}] step {}: arrival in {} noticed at its frame {} of {} (mean {} {:.3f} after {:.3f}; {} false "
      "alarm(s)): adapting on the {} frames from there",
      method_.name(), run.k, here.name, d.detected_at + 1, frames, a.detect_signal, d.arriving_mean, d.history_mean,
      d.false_alarms, run.data.images.size());
}

void Trainer::resume_step(StepRun& run) {
  run.state.step = run.k;
  run.last = checkpoint(fmt::format("step{}_last.pt", run.k));
  if (!fs::exists(run.last)) return;
  run.state = load_checkpoint(run.last, *model_, run.optimizer.get(), &method_);
  log::info("[{}] step {}: resuming after epoch {} (iteration {}/{})", method_.name(), run.k, run.state.epoch,
            run.state.iteration, run.total);
}

void Trainer::take_shared_step0(StepRun& run) {
  // A step 0 that an identical earlier run trained is taken from the shared folder instead of
  // trained again, and one trained here is left there. The lock is held until this step 0 is
  // stored, so a run with the same step 0 waits for it rather than training it too. A domain
  // run's step 0 is its first room: shared when labelled, where the adaptation options (which act
  // on unlabelled rooms only; a labelled step's adaptation is the no-op one) change nothing, so
  // they are not part of the key. A first room adapted without labels trains anew.
  const auto& folder = cfg_.train.shared_step0;
  if (run.k != 0 || folder.empty() || group_ || !run.data.labelled) return;
  fs::create_directories(folder);
  run.step0_file =
      (fs::path(folder) / (step0_key(*run.data.dataset, run.data.images, run.loader_options.lut, run.total) + ".pt"))
          .string();
  run.step0_lock = std::make_unique<core::FileLock>(run.step0_file + ".lock");
  if (run.state.iteration != 0 || !fs::exists(run.step0_file)) return;
  load_checkpoint(run.step0_file, *model_, nullptr, nullptr);
  run.state.iteration = run.total;
  run.timing.shared_step0 = run.step0_file;
  log::info("[{}] step 0: the model of an identical step 0 from {} (train.shared_step0)", method_.name(),
            run.step0_file);
}

void Trainer::join_processes(StepRun& run) {
  // Every process starts the step from rank 0's weights, averages gradients, and takes rank 0's
  // BatchNorm statistics before each forward (as DDP's broadcast_buffers).
  if (!group_ || group_->size() <= 1) return;
  run.buffers = model_->buffers();
  std::vector<torch::Tensor> weights = model_->parameters();
  for (const auto& p : method_.parameters()) weights.push_back(p);
  weights.insert(weights.end(), run.buffers.begin(), run.buffers.end());
  distributed::broadcast_tensors(*group_, weights);
  run.averager = std::make_unique<distributed::GradientAverager>(*group_);
  if (cfg_.train.sync_bn) run.sync_bn = std::make_unique<SyncBatchNormScope>(group_);
  // Dropout masks (and other random draws in the forward pass) differ between processes, as they
  // differ between the samples of one process's batch; rank 0 keeps the single-process stream.
  if (group_->rank() > 0)
    core::seed_torch(core::mix_seed(core::mix_seed(cfg_.seed, 0x57E9, run.k), 0xD0, group_->rank()));
}

void Trainer::train_epochs(StepRun& run) {
  auto& state = run.state;
  while (state.iteration < run.total) {
    // Every epoch but the step's last runs all per_epoch batches, so the iteration count says
    // where in its epoch a resumed run stands (a checkpoint within an epoch).
    const int64_t first_batch = state.iteration - int64_t(state.epoch) * run.per_epoch;
    CSEG_CHECK(first_batch >= 0 && first_batch < run.per_epoch,
               "{}: iteration {} does not fall in epoch {} of {} batches (was the data or the batch size changed?)",
               run.last, state.iteration, state.epoch, run.per_epoch);
    run.loader->start_epoch(state.epoch, size_t(first_batch));
    const auto epoch_start = Clock::now();
    double wait = 0;
    int64_t seen = 0;
    while (state.iteration < run.total) {
      const auto t0 = Clock::now();
      auto batch = run.loader->next();
      wait += seconds_since(t0);
      if (!batch) break;
      train_iteration(run, *batch);
      seen += batch->size() * (group_ ? group_->size() : 1);  // the global batch, replayed samples included
      run.timing.iteration_seconds.push_back(seconds_since(t0));
      if (mid_epoch_checkpoint_due(cfg_.train, run)) save_last_checkpoint(run);
    }
    run.timing.train_seconds += seconds_since(epoch_start);
    run.timing.data_wait_seconds += wait;
    run.timing.images += seen;
    ++state.epoch;
    if (cfg_.eval.val_every > 0 && state.epoch % cfg_.eval.val_every == 0) validate(run);
    save_last_checkpoint(run);
  }
}

void Trainer::train_iteration(StepRun& run, Batch& batch) {
  auto& state = run.state;
  const auto& tc = cfg_.train;
  batch.to(device_);
  const double f = lr_factor(cfg_.optim, state.iteration, run.total);
  for (size_t g = 0; g < run.optimizer->param_groups().size(); ++g)
    set_group_lr(*run.optimizer, g, run.base_lrs[g] * f);
  const double lr = run.base_lrs[0] * f;
  run.ctx.iteration = state.iteration;
  run.ctx.epoch = state.epoch;
  if (run.averager) distributed::broadcast_tensors(*group_, run.buffers);
  const auto r = run.iteration->run(run.ctx, batch);
  if (!r.applied && !run.scaler) {         // (fp16's scaler skips overflowing steps by design)
    std::vector<std::string> term_values;  // which term went wrong
    for (const auto& [name, t] : r.terms) term_values.push_back(fmt::format("{} {}", name, t.item<double>()));
    CSEG_CHECK(tc.nonfinite == "skip",
               "[{}] step {} iteration {}: the loss is {} ({}; learning rate {} too high?); the update was not "
               "applied, so the last checkpoint ({}) holds sound weights; lower the learning rate, or set "
               "train.nonfinite: skip to skip such iterations",
               method_.name(), run.k, state.iteration, r.loss, fmt::join(term_values, ", "), lr,
               fs::exists(run.last) ? run.last
               : run.k > 0          ? checkpoint(fmt::format("step{}.pt", run.k - 1))
                                    : std::string("none yet"));
    ++run.timing.skipped_nonfinite;
  }
  if (std::isfinite(r.loss)) run.loss_avg = state.iteration == 0 ? r.loss : 0.95 * run.loss_avg + 0.05 * r.loss;
  ++state.iteration;
  run.progress->update(state.iteration, fmt::format("loss {:.4f}", run.loss_avg));
  if (state.iteration % tc.log_every == 0 || state.iteration == run.total) {
    IterationRecord record{run.k, state.iteration, state.epoch, lr, r.loss, {}};
    for (const auto& [name, t] : r.terms) record.terms.emplace_back(name, t.item<double>());
    recorder_->iteration(record);
  }
}

void Trainer::save_last_checkpoint(StepRun& run) {
  if (run.scaler) run.state.loss_scaler = run.scaler->state();
  if (primary()) save_checkpoint(run.last, *model_, run.optimizer.get(), &method_, run.state);
  run.last_saved = Clock::now();
}

void Trainer::validate(StepRun& run) {
  const auto& sc = *data_.scenario;
  const int sk = data_.scenario_step(run.k);
  const auto& val = data_.val_split(run.k);
  auto cm = evaluate(*model_, *val.dataset, sc.eval_images(sk, val.index), sc.eval_labels(sk),
                     method_eval_options(sc.classes_after(sk)));
  model_->train();
  const double miou = metrics::score(cm).miou;
  recorder_->validation(run.k, run.state.epoch, miou);
  log::info("[{}] step {} epoch {}: val mIoU {:.4f}", method_.name(), run.k, run.state.epoch, miou);
  if (miou > run.state.best_val) {
    run.state.best_val = miou;
    if (primary())
      save_checkpoint(checkpoint(fmt::format("step{}_best.pt", run.k)), *model_, nullptr, &method_, run.state);
  }
}

void Trainer::finish_step(StepRun& run) {
  auto& state = run.state;
  run.progress->finish(fmt::format("loss {:.4f}", run.loss_avg));
  if (run.step0_lock && run.timing.shared_step0.empty())
    save_checkpoint(run.step0_file, *model_, nullptr, nullptr, state);
  run.step0_lock.reset();
  if (run.timing.skipped_nonfinite > 0)
    log::warn("[{}] step {}: {} iteration(s) skipped: a non-finite loss or gradient (train.nonfinite: skip)",
              method_.name(), run.k, run.timing.skipped_nonfinite);
  if (run.scaler && run.scaler->skipped() > 0)
    log::info("[{}] step {}: fp16 loss scaling skipped {} iteration(s) whose gradients overflowed (scale now {})",
              method_.name(), run.k, run.scaler->skipped(), run.scaler->current());
  run.ctx.iteration = state.iteration;
  if (cfg_.eval.use_best && state.best_val >= 0) {
    if (group_) group_->barrier();  // rank 0 has written the file the others read
    load_checkpoint(checkpoint(fmt::format("step{}_best.pt", run.k)), *model_, nullptr, nullptr);
  }
  method_.on_step_end(run.ctx);
  if (primary()) {
    save_checkpoint(checkpoint(fmt::format("step{}.pt", run.k)), *model_, nullptr, &method_, state);
    fs::remove(run.last);
  }
  run.timing.iterations = state.iteration;
  run.timing.epochs = state.epoch;
  run.timing.best_val = state.best_val;
}

std::string Trainer::step0_key(const data::Dataset& dataset, const std::vector<size_t>& images,
                               const std::array<uint8_t, 256>& lut, int64_t iterations) const {
  const auto& m = cfg_.model;
  const auto& a = cfg_.augment;
  const auto& o = cfg_.optim;
  const auto& l = cfg_.loss;
  const auto& t = cfg_.train;
  // The training itself: fine-tuning, or this method with its options.
  nlohmann::json behaviour = "finetune";
  if (!method_.first_step_is_finetuning()) {
    const auto it = cfg_.method_options.find(method_.name());
    behaviour = {{"method", method_.name()},
                 {"options", it == cfg_.method_options.end() ? nlohmann::json::object() : nlohmann::json(it->second)}};
  }
  // Initial weights: the file, its size and modification time.
  nlohmann::json weights = nullptr;
  if (!m.pretrained.empty() && fs::exists(m.pretrained))
    weights = {{"file", fs::absolute(m.pretrained).string()},
               {"bytes", fs::file_size(m.pretrained)},
               {"mtime", fs::last_write_time(m.pretrained).time_since_epoch().count()}};
  // The data: its images by id, and the pixels of a few of them (a folder regenerated under the
  // same name changes them).
  std::vector<std::string> ids;
  for (size_t i : images) ids.push_back(dataset.id(i));
  uint64_t pixels = 1469598103934665603ull;
  for (size_t n = 0; n < images.size(); n += std::max<size_t>(1, images.size() / 4)) {
    const auto sample = dataset.load(images[n]);
    for (const cv::Mat* mat : {&sample.image, &sample.mask})
      for (int r = 0; r < mat->rows; ++r)
        for (const uint8_t* p = mat->ptr<uint8_t>(r); p != mat->ptr<uint8_t>(r) + mat->cols * mat->elemSize(); ++p)
          pixels = (pixels ^ *p) * 1099511628211ull;
  }
  const nlohmann::json j = {
      {"format", 1},
      {"behaviour", behaviour},
      {"seed", cfg_.seed},
      {"threads", at::get_num_threads()},
      {"device", cfg_.device},
      {"data",
       {{"dataset", dataset.describe()},
        {"ids", ids},
        {"pixels", pixels},
        {"lut", lut},
        {"saliency", method_.needs_saliency()}}},
      {"heads", model_->head_sizes()},
      {"model",
       {{"name", m.name},
        {"aux", m.aux},
        {"dropout", m.dropout},
        {"norm", m.norm},
        {"backbone", m.backbone},
        {"output_stride", m.output_stride},
        {"aspp_rates", m.aspp_rates},
        {"layout", m.layout},
        {"mib_eval_pooling", m.mib_eval_pooling},
        {"unet_channels", m.unet_channels},
        {"unet_upsampling", m.unet_upsampling},
        {"pretrained_mode", m.pretrained_mode},
        {"pretrained_norm_act", m.pretrained_norm_act},
        {"channels_last", m.channels_last},
        {"weights", weights}}},
      {"augment",
       {{"crop", a.crop_size},
        {"scale", {a.scale_min, a.scale_max}},
        {"hflip", a.hflip},
        {"mean", a.mean},
        {"std", a.std}}},
      {"optim",
       {{"lr", o.lr},
        {"head_lr_mult", o.head_lr_mult},
        {"momentum", o.momentum},
        {"nesterov", o.nesterov},
        {"weight_decay", o.weight_decay},
        {"schedule", o.schedule},
        {"power", o.power},
        {"warmup", o.warmup_iters}}},
      {"loss",
       {{"name", l.name},
        {"class_weights", l.class_weights},
        {"focal_gamma", l.focal_gamma},
        {"ohem_keep", l.ohem_keep},
        {"aux_weight", l.aux_weight}}},
      {"train",
       {{"batch", t.batch_size}, {"iterations", iterations}, {"precision", t.precision}, {"sync_bn", t.sync_bn}}},
      {"eval", {{"val_every", cfg_.eval.val_every}, {"use_best", cfg_.eval.use_best}}}};
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : j.dump()) h = (h ^ c) * 1099511628211ull;
  return fmt::format("{:016x}", h);
}

}  // namespace cseg::engine
