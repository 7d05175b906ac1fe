#include "cseg/engine/trainer.h"

#include "cseg/core/log.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "cseg/core/error.h"
#include "cseg/core/device.h"
#include "cseg/core/files.h"
#include "cseg/core/grad_scaler.h"
#include "cseg/core/precision.h"
#include "cseg/core/runtime.h"
#include "cseg/data/image_io.h"
#include "cseg/adaptation/consistency.h"
#include "cseg/adaptation/optical_flow.h"
#include "cseg/adaptation/pseudo_labels.h"
#include "cseg/adaptation/temporal.h"
#include "cseg/data/loader.h"
#include "cseg/distributed/process_group.h"
#include "cseg/distributed/sync_batch_norm.h"
#include "cseg/engine/checkpoint.h"
#include "cseg/engine/evaluator.h"
#include "cseg/engine/optimizer.h"
#include "cseg/logging/progress.h"
#include "cseg/logging/tensorboard.h"
#include "cseg/losses/losses.h"
#include "cseg/metrics/confusion.h"
#include "cseg/models/cost.h"
#include "cseg/models/inference.h"
#include "cseg/models/layers.h"
#include "cseg/weights/load.h"
#include "cseg/metrics/continual.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace cseg::engine {

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

/// {"median", "p90"} of a step's iteration times in ms (null when it trained no iteration here).
nlohmann::json iteration_ms(std::vector<double> seconds) {
  if (seconds.empty()) return nullptr;
  std::sort(seconds.begin(), seconds.end());
  auto at = [&](double q) { return 1000 * seconds[std::min(seconds.size() - 1, size_t(q * double(seconds.size())))]; };
  return {{"median", at(0.5)}, {"p90", at(0.9)}};
}

nlohmann::json opt_json(const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(); }
/// The inverse of opt_json for a list: null -> nullopt.
std::vector<std::optional<double>> optional_values(const nlohmann::json& list) {
  std::vector<std::optional<double>> v;
  for (const auto& x : list) v.push_back(x.is_null() ? std::nullopt : std::optional<double>(x.get<double>()));
  return v;
}

nlohmann::json opt_json(const std::vector<std::optional<double>>& v) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& x : v) j.push_back(opt_json(x));
  return j;
}

/// The optimiser (optim.name) over four parameter groups: encoder/decoder x with/without weight
/// decay. Biases and normalisation weights (the 1-d tensors) get no weight decay.
std::unique_ptr<torch::optim::Optimizer> make_step_optimizer(models::Segmenter& model, const config::OptimConfig& o,
                                                             double lr, std::vector<double>& base_lrs,
                                                             const std::vector<torch::Tensor>& method_params) {
  std::set<const void*> encoder;
  for (auto& p : model.encoder_parameters()) encoder.insert(p.unsafeGetTensorImpl());
  std::vector<ParamGroup> groups(4);  // enc-decay, enc-no-decay, dec-decay, dec-no-decay
  for (auto& p : model.parameters()) {
    if (!p.requires_grad()) continue;
    const bool enc = encoder.count(p.unsafeGetTensorImpl()) > 0;
    const bool no_decay = p.dim() <= 1;
    groups[(enc ? 0 : 2) + (no_decay ? 1 : 0)].params.push_back(p);
  }
  for (const auto& p : method_params)
    if (p.requires_grad()) groups[2 + (p.dim() <= 1 ? 1 : 0)].params.push_back(p);
  for (int g = 0; g < 4; ++g) {
    groups[g].lr = g < 2 ? lr : lr * o.head_lr_mult;
    groups[g].decay = g % 2 == 0;
  }
  return make_optimizer(o, groups, base_lrs);
}

/// The student's scale for one iteration of step `step`, uniform in [1 - spread, 1 + spread];
/// drawn from (seed, step, iteration) so a resumed step draws the same.
double draw_student_scale(double spread, uint64_t seed, int step, int64_t iteration) {
  std::mt19937_64 rng(core::mix_seed(core::mix_seed(seed, 0x5CA1E, step), 0, uint64_t(iteration)));
  return std::uniform_real_distribution<double>(1.0 - spread, 1.0 + spread)(rng);
}

/// Under bf16 autocast the logits come out bfloat16; every loss (cross-entropy, distillation
/// softmaxes) then computes in float, as mixed-precision training does on GPUs too. A no-op in
/// float32.
models::ModelOutput float_logits(models::ModelOutput out) {
  auto to_float = [](torch::Tensor& t) {
    if (t.defined() && t.scalar_type() != torch::kFloat) t = t.to(torch::kFloat);
  };
  to_float(out.logits);
  to_float(out.aux_logits);
  if (auto it = out.features.find("logits_lowres"); it != out.features.end()) to_float(it->second);
  return out;
}

/// Poly decay (1 - t/T)^power with optional linear warm-up, as a factor of the base rate.
double lr_factor(const config::OptimConfig& o, int64_t it, int64_t total) {
  double f = 1.0;
  if (o.schedule == "poly") f = std::pow(1.0 - double(it) / double(std::max<int64_t>(1, total)), o.power);
  if (o.warmup_iters > 0 && it < o.warmup_iters) f *= double(it + 1) / o.warmup_iters;
  return f;
}

}  // namespace

bool apply_update(methods::Method& method, methods::StepContext& ctx, torch::optim::Optimizer& optimizer,
                  core::GradScaler* scaler, const std::vector<torch::Tensor>& trained, bool loss_finite) {
  bool finite;
  if (scaler) {
    finite = scaler->unscale(trained);  // gradients back to their true size; false on overflow
  } else {
    finite = loss_finite;
    for (const auto& p : trained)
      if (finite && p.grad().defined()) finite = torch::isfinite(p.grad()).all().item<bool>();
  }
  if (finite) {
    method.after_backward(ctx);
    optimizer.step();
  }
  if (scaler) scaler->update(finite);
  if (finite) method.after_optimizer_step(ctx);
  return finite;
}

void release_gradients(torch::optim::Optimizer& optimizer) {
  for (auto& group : optimizer.param_groups())
    for (auto& p : group.params()) p.mutable_grad().reset();
}

std::shared_ptr<models::Segmenter> build_model_for_step(const config::ExperimentConfig& cfg,
                                                        const scenarios::Scenario& sc, int last_step, bool all_heads) {
  auto model = models::make_model(cfg.model, sc.classes_after(0));
  const int last = all_heads ? sc.num_steps() - 1 : last_step;
  for (int k = 1; k <= last; ++k) model->add_head(sc.classes_after(k) - sc.classes_after(k - 1));
  return model;
}

Trainer::Trainer(const config::ExperimentConfig& cfg, const ExperimentData& data, methods::Method& method,
                 std::string run_dir, distributed::ProcessGroup* group)
    : cfg_(cfg), device_(core::parse_device(cfg.device)), data_(data), method_(method), run_dir_(std::move(run_dir)), group_(group) {}

bool Trainer::primary() const { return !group_ || group_->rank() == 0; }

EvalOptions Trainer::method_eval_options(int classes) {
  auto o = eval_options(cfg_);
  o.num_classes = classes;
  o.predict = [this](const models::ModelOutput& out) { return method_.predict(out); };
  return o;
}

Trainer::~Trainer() = default;

void Trainer::log_sequence(int k, const nlohmann::json& step) {
  if (!tb_sequence_)
    tb_sequence_ = std::make_unique<logging::TensorBoardWriter>((fs::path(run_dir_) / "tensorboard" / "sequence").string());
  auto& tb = *tb_sequence_;
  const auto& test = step["test"];
  for (const char* key : {"miou", "miou_old", "miou_new", "hiou"})
    if (test[key].is_number()) tb.scalar(std::string("test/") + key, test[key].get<double>(), k);
  // Per-class IoU as scalars and as a Markdown table in the text tab.
  std::string table = "| class | IoU (%) |\n|---|---|\n";
  const auto& iou = test["per_class_iou"];
  for (size_t c = 0; c < iou.size() && c < data_.class_names.size(); ++c) {
    if (!iou[c].is_number()) continue;
    tb.scalar("per_class_iou/" + data_.class_names[c], iou[c].get<double>(), k);
    table += fmt::format("| {} | {:.1f} |\n", data_.class_names[c], 100 * iou[c].get<double>());
  }
  tb.text("per_class_iou", table, k);
  // A few test images: input | ground truth | prediction, in the dataset's colours; also kept as
  // predictions/step<k>.png for the HTML report.
  const auto grid = prediction_grid(k);
  if (grid.png.empty()) return;
  const auto folder = fs::path(run_dir_) / "predictions";
  fs::create_directories(folder);
  core::write_text_atomic((folder / fmt::format("step{}.png", k)).string(), grid.png);
  tb.image("test/input_truth_prediction", grid.png, grid.height, grid.width, 3, k);
}

Trainer::EncodedImage Trainer::prediction_grid(int k) {
  const auto& sc = *data_.scenario;
  const auto& split = data_.test_split(k);
  const int sk = data_.scenario_step(k);
  auto ids = sc.eval_images(sk, split.index);
  if (ids.size() > 4) ids.resize(4);
  if (ids.empty()) return {};
  data::LoaderOptions lo;
  lo.batch_size = int(ids.size());
  lo.train = false;
  lo.workers = 0;
  lo.lut = sc.eval_labels(sk);
  lo.augment.mean = cfg_.augment.mean;
  lo.augment.std = cfg_.augment.std;
  data::Loader loader(*split.dataset, ids, lo);
  loader.start_epoch(0);
  auto batch = loader.next();
  if (!batch) return {};
  torch::Tensor pred;
  {
    torch::NoGradGuard no_grad;
    model_->eval();
    auto out = model_->forward(batch->images.to(device_));
    out.logits = seen_logits(out.logits, sc.classes_after(sk));
    pred = method_.predict(out).cpu();
    model_->train();
  }
  auto mean = torch::tensor(cfg_.augment.mean, torch::kFloat).view({1, 3, 1, 1});
  auto stdv = torch::tensor(cfg_.augment.std, torch::kFloat).view({1, 3, 1, 1});
  auto rgb = ((batch->images * stdv + mean) * 255).clamp(0, 255).to(torch::kUInt8).permute({0, 2, 3, 1}).contiguous();
  auto lut = torch::empty({256, 3}, torch::kUInt8);
  for (int i = 0; i < 256; ++i)
    for (int c = 0; c < 3; ++c) lut[i][c] = data_.palette[i][c];
  auto colour = [&](const torch::Tensor& labels) { return lut.index({labels.clamp(0, 255).to(torch::kLong)}); };
  auto rows = torch::cat({rgb, colour(batch->labels), colour(pred)}, 2);  // [N, H, 3W, 3]
  auto grid = rows.reshape({-1, rows.size(2), 3}).contiguous();            // [N*H, 3W, 3]
  cv::Mat img(int(grid.size(0)), int(grid.size(1)), CV_8UC3, grid.data_ptr<uint8_t>());
  cv::Mat bgr;
  cv::cvtColor(img, bgr, cv::COLOR_RGB2BGR);
  std::vector<uchar> png;
  cv::imencode(".png", bgr, png);
  return {std::string(png.begin(), png.end()), img.rows, img.cols};
}

std::string Trainer::checkpoint(const std::string& name) const {
  return (fs::path(run_dir_) / "checkpoints" / name).string();
}

std::shared_ptr<models::Segmenter> Trainer::build_model(int last_step) const {
  auto model = build_model_for_step(cfg_, *data_.scenario, data_.scenario_step(last_step), method_.preallocates_heads());
  model->to(device_);
  return model;
}

void Trainer::write_results() {
  if (!primary()) return;
  core::write_text_atomic((fs::path(run_dir_) / "results.json").string(), results_.dump(2) + "\n");
  // Per-class IoU per step, one row per step (the CSV PLOP writes).
  std::string csv = "step";
  for (const auto& n : data_.class_names) csv += "," + n;
  csv += "\n";
  for (const auto& s : results_["steps"]) {
    csv += std::to_string(s["step"].get<int>());
    const auto& iou = s["test"]["per_class_iou"];
    for (size_t c = 0; c < data_.class_names.size(); ++c)
      csv += "," + (c < iou.size() && !iou[c].is_null() ? fmt::format("{:.6f}", iou[c].get<double>()) : std::string());
    csv += "\n";
  }
  core::write_text_atomic((fs::path(run_dir_) / "per_class_iou.csv").string(), csv);
}

torch::Tensor Trainer::teacher_logits(models::Segmenter& teacher, const torch::Tensor& images) const {
  torch::NoGradGuard no_grad;
  auto logits = teacher.forward(images).logits;
  if (cfg_.adaptation.teacher_flip)  // the mirror image's prediction, mirrored back
    logits = 0.5 * (logits + teacher.forward(images.flip({3})).logits.flip({3}));
  return logits;
}

torch::Tensor Trainer::teacher_labels(models::Segmenter& teacher, const torch::Tensor& images) const {
  return adaptation::hard_pseudo_labels(teacher_logits(teacher, images), cfg_.adaptation.threshold,
                                        cfg_.adaptation.class_fraction);
}

nlohmann::json Trainer::score_pseudo_labels(int k, const std::vector<cv::Mat>& maps) const {
  const auto& env = data_.environments.at(k);
  const auto sc = adaptation::score_pseudo_labels(maps, *env.train_with_masks, data_.scenario->train_labels(0),
                                                  data_.scenario->classes_after(0));
  log::info("[{}] pseudo-labels of {} against its masks (adaptation.score_pseudo_labels): {:.1f} % of pixels "
               "labelled, {:.1f} % of them right, mIoU {:.1f}",
               method_.name(), env.name, 100 * sc.labelled_fraction, 100 * sc.accuracy, 100 * sc.miou);
  return {{"labelled_fraction", sc.labelled_fraction}, {"accuracy", sc.accuracy}, {"miou", sc.miou}};
}

nlohmann::json Trainer::class_colours() const {
  nlohmann::json colours = nlohmann::json::array();
  for (size_t l = 0; l < data_.class_names.size(); ++l)
    colours.push_back({data_.palette[l][0], data_.palette[l][1], data_.palette[l][2]});
  return colours;
}

nlohmann::json Trainer::run() {
  if (data_.domain()) {
    const auto ok = methods::domain_method_names();
    CSEG_CHECK(std::find(ok.begin(), ok.end(), method_.name()) != ok.end(),
               "method '{}' is built around new classes; domain scenarios take: {}", method_.name(), fmt::join(ok, ", "));
  }
  if (primary()) {
    fs::create_directories(fs::path(run_dir_) / "checkpoints");
    core::write_text_atomic((fs::path(run_dir_) / "scenario.json").string(),
                            describe_scenario(data_, true).dump(1) + "\n");
  }

  const fs::path results_path = fs::path(run_dir_) / "results.json";
  results_ = {{"schema", "cseg.results/1"},
              {"experiment", cfg_.name},
              {"method", method_.name()},
              {"dataset", data_.train.dataset->info().name},
              {"task", cfg_.scenario.steps.empty() ? cfg_.scenario.task : "custom"},
              {"mode", cfg_.scenario.mode},
              {"protocol", cfg_.scenario.protocol},
              {"model", cfg_.model.name},
              {"seed", cfg_.seed},
              {"class_names", data_.class_names},
              {"class_colours", class_colours()},
              {"steps", nlohmann::json::array()}};
  if (data_.domain()) {
    results_["type"] = "domain";
    results_["environments"] = nlohmann::json::array();
    for (const auto& e : data_.environments)
      results_["environments"].push_back({{"name", e.name}, {"labelled", e.labelled}});
  }
  // Resume: keep the steps whose end-of-step checkpoint and results both exist.
  int first = cfg_.train.start_step;
  if (fs::exists(results_path)) {
    // A damaged results file is an error, never a silent retrain of every step: the steps it
    // lists are the run's record (move it away to retrain).
    auto old = nlohmann::json::parse(core::read_text(results_path.string()), nullptr, false);
    const auto damaged = [&](const std::string& why) {
      return Error(fmt::format("results file '{}' {}: restore it, or move it away to retrain this run's steps",
                               results_path.string(), why));
    };
    if (old.is_discarded()) throw damaged("is not valid JSON");
    if (!old.is_object() || !old.contains("steps") || !old["steps"].is_array())
      throw damaged("has no 'steps' list");
    for (const auto& s : old["steps"]) {
      if (!s.is_object() || !s.contains("step") || !s["step"].is_number_integer())
        throw damaged("has a step without an integer 'step'");
      int k = s["step"].get<int>();
      if (k == first && fs::exists(checkpoint(fmt::format("step{}.pt", k)))) {
        results_["steps"].push_back(s);
        ++first;
      }
    }
    if (old.contains("cost")) results_["cost"] = old["cost"];
    if (old.contains("initial_task_miou")) results_["initial_task_miou"] = old["initial_task_miou"];
  }
  CSEG_CHECK(first <= data_.num_steps(), "train.start_step {} is past the scenario's {} steps", first,
             data_.num_steps());
  summarize();  // the restored steps' summary, also when a rerun finds every step done
  if (first > 0) {
    const bool resumed = first > cfg_.train.start_step;
    const std::string from = resumed ? checkpoint(fmt::format("step{}.pt", first - 1)) : cfg_.train.init_checkpoint;
    model_ = build_model(first - 1);
    load_checkpoint(from, *model_, nullptr, &method_);
    log::info("[{}] {} from {} (steps 0..{} done)", method_.name(), resumed ? "resuming" : "starting",
                 from, first - 1);
  } else {
    core::seed_torch(core::mix_seed(cfg_.seed, 0xC0DE));
    model_ = build_model(0);
    if (!cfg_.model.pretrained.empty()) {
      auto report = weights::load_weights(*model_, cfg_.model.pretrained,
                                          {weights::parse_load_mode(cfg_.model.pretrained_mode),
                                           cfg_.model.pretrained_strict,
                                           weights::inplace_abn_scale_for(cfg_.model.pretrained_norm_act)});
      log::info("pretrained weights: {} tensors from {} ({} mode){}", report.loaded, cfg_.model.pretrained,
                   cfg_.model.pretrained_mode, report.ok() ? "" : "; report:\n" + report.to_string());
    }
  }
  if (data_.domain() && !results_.contains("initial_task_miou")) {
    // The model before any training, on every environment: the reference of forward transfer.
    nlohmann::json initial = nlohmann::json::array();
    for (const auto& e : evaluate_environments()) initial.push_back(e.scores.miou);
    results_["initial_task_miou"] = initial;
  }
  if (first < data_.num_steps()) results_.erase("cost");  // the model changes: measure again at the end
  for (int k = first; k < data_.num_steps(); ++k) {
    StepTiming timing = train_step(k);
    results_["steps"].push_back(evaluate_step(k, timing));
    if (primary()) log_sequence(k, results_["steps"].back());
    summarize();
    write_results();
  }
  if (!results_.contains("cost") && primary()) {
    // The final model's cost: multiply-adds per image at the training crop and at the first
    // test image's size, and inference latency there (batch 1).
    auto sample = data_.test.dataset->load(0);
    const int64_t th = sample.image.rows, tw = sample.image.cols, crop = cfg_.augment.crop_size;
    // Counted and timed on a CPU copy, whatever device trained it; latency as `cseg predict`
    // would run the model: a copy readied for inference.
    auto on_cpu = model_->make_like();
    models::copy_state(*on_cpu, *model_);
    auto train_cost = models::measure_cost(*on_cpu, crop, crop);
    auto test_cost = models::measure_cost(*on_cpu, th, tw);
    models::prepare_for_inference(*on_cpu);  // after counting: the cost of the model as trained
    auto latency = models::measure_latency(*on_cpu, th, tw, 1, 3, 10);
    results_["cost"] = {{"params", train_cost.params},
                        {"trainable_params", train_cost.trainable_params},
                        {"macs_train", train_cost.macs},
                        {"train_size", {crop, crop}},
                        {"macs_test", test_cost.macs},
                        {"test_size", {th, tw}},
                        {"latency_ms_median", latency.median_ms},
                        {"latency_ms_p90", latency.p90_ms},
                        {"latency_batch", 1},
                        {"threads", at::get_num_threads()}};
    write_results();
  }
  return results_;
}

void Trainer::summarize() {
  if (results_["steps"].empty()) return;
  // Accuracy matrix over tasks (R[i][j] = mIoU on task j's classes after step i).
  metrics::AccuracyMatrix r;
  for (const auto& s : results_["steps"]) {
    auto row = optional_values(s["task_miou"]);
    row.resize(data_.num_steps());
    r.push_back(row);
  }
  results_["accuracy_matrix"] = nlohmann::json::array();
  for (const auto& row : r) results_["accuracy_matrix"].push_back(opt_json(row));
  results_["forgetting"] = opt_json(metrics::forgetting(r));
  results_["bwt"] = opt_json(metrics::backward_transfer(r));
  results_["acc"] = opt_json(metrics::final_average(r));
  if (data_.domain() && results_.contains("initial_task_miou"))
    results_["fwt"] = opt_json(metrics::forward_transfer(r, optional_values(results_["initial_task_miou"])));
  double avg = 0;
  for (const auto& s : results_["steps"]) avg += s["test"]["miou"].get<double>();
  results_["avg_miou"] = avg / results_["steps"].size();
}

Trainer::StepTiming Trainer::train_step(int k) {
  const auto& sc = *data_.scenario;
  const auto& tc = cfg_.train;
  methods::StepContext ctx;
  ctx.step = k;
  const int sk = data_.scenario_step(k);  // domain scenarios: 0, every class from the start
  ctx.num_old_classes = k == 0 ? 0 : sc.classes_after(data_.scenario_step(k - 1));
  ctx.num_classes = sc.classes_after(sk);
  ctx.first_new_label = data_.domain() ? 0 : ctx.num_old_classes;
  const bool cumulative = method_.data_policy() == methods::DataPolicy::Cumulative;
  // Joint training over environments is the all-labels reference: it reads every environment's
  // masks, those of environments marked unlabelled too.
  const bool labelled = data_.labelled(k) || (cumulative && data_.domain());
  ctx.scenario = &sc;
  ctx.config = &cfg_;
  // The teacher: the model as it ended step k-1, copied before the new head is added (on a
  // resume, model_ holds step k-1's checkpoint here; the mid-step state is loaded below). It
  // only predicts: readied as for inference (batch norms folded, channels-last; Fast-SCNN's
  // forward at 96²: 10.7 -> 7.5 ms, measured), with the maps the method reads.
  std::shared_ptr<models::Segmenter> old_model;
  if (k > 0 && (method_.needs_old_model() || !labelled)) {
    old_model = models::inference_copy(*model_, method_.needs_features());
    ctx.old_model = old_model.get();
  }
  if (static_cast<int>(model_->head_sizes().size()) == sk) {  // (pre-allocated heads are all there)
    model_->add_head(ctx.num_classes - ctx.num_old_classes);
    model_->to(device_);  // the new head is made on the CPU
  }
  // Intermediate maps only for the methods that read them: they cost memory while training.
  model_->set_feature_taps(method_.needs_features());
  if (cfg_.model.channels_last) models::to_channels_last(*model_);  // a new head, or a loaded model, comes NCHW
  CSEG_CHECK(labelled || old_model, "step {}: an unlabelled environment needs a model to learn from (a labelled "
             "step before it)", k);
  ctx.model = model_.get();

  const auto& split = data_.train_split(k);
  // Unlabelled video with temporal consistency: the step's pseudo-labels are computed here, on
  // whole frames, and read by the loader as if they were the environment's labels.
  const bool temporal = !labelled && cfg_.adaptation.temporal;
  std::shared_ptr<const data::Dataset> train_dataset = split.dataset;
  nlohmann::json pseudo_label_stats;
  // Whole-frame pseudo-labels are made with OpenCV's flow on the host: logits come back there.
  const auto teacher = [&](const torch::Tensor& x) { return teacher_logits(*old_model, x.to(device_)).cpu(); };
  // Video cues need the environment's frames grouped into sequences.
  const auto require_video = [&](const char* key) {
    CSEG_CHECK(!split.dataset->sequences().empty(),
               "adaptation.{}: environment '{}' has no video sequences ({}; FMNIST-Scenes writes them with --frames)",
               key, data_.environments[k].name, split.dataset->describe());
  };
  if (temporal) {
    require_video("temporal");
    adaptation::TemporalLabelStats st;
    const auto t0 = Clock::now();
    auto maps = adaptation::frame_pseudo_labels(*split.dataset, teacher, cfg_.augment.mean, cfg_.augment.std,
                                                cfg_.adaptation.threshold, cfg_.adaptation.class_fraction, true, &st);
    const double seconds = seconds_since(t0);
    log::info("[{}] temporal pseudo-labels: {} frames, {} fused with the next frame (flow consistent on {:.0f} % "
                 "of their pixels), {:.0f} % of pixels labelled, {:.1f} s",
                 method_.name(), st.frames, st.fused, 100 * st.consistent_fraction, 100 * st.labelled_fraction,
                 seconds);
    pseudo_label_stats = {{"kind", "temporal"}, {"frames", st.frames}, {"fused_with_next", st.fused},
                          {"flow_consistent_fraction", st.consistent_fraction},
                          {"labelled_fraction", st.labelled_fraction}, {"seconds", seconds}};
    if (cfg_.adaptation.score_pseudo_labels) pseudo_label_stats["score"] = score_pseudo_labels(k, maps);
    train_dataset = std::make_shared<data::RelabelledDataset>(split.dataset, std::move(maps), "temporal pseudo-labels");
  } else if (!labelled && cfg_.adaptation.score_pseudo_labels) {
    // The teacher's labels on whole frames, each on its own: training labels augmented batches,
    // so this estimates the quality of what the student learns from.
    auto maps = adaptation::frame_pseudo_labels(*split.dataset, teacher, cfg_.augment.mean, cfg_.augment.std,
                                                cfg_.adaptation.threshold, cfg_.adaptation.class_fraction, false);
    pseudo_label_stats = {{"kind", cfg_.adaptation.pseudo_labels}, {"score", score_pseudo_labels(k, maps)}};
  }
  std::vector<size_t> images;
  if (cumulative && data_.domain()) {  // every frame of the environments so far, with its masks
    std::vector<std::shared_ptr<const data::Dataset>> parts;
    std::vector<std::string> names;
    for (int e = 0; e <= k; ++e) {
      parts.push_back(data_.environments[e].train_with_masks);
      names.push_back(data_.environments[e].name);
    }
    train_dataset = std::make_shared<data::ConcatDataset>(
        parts, fmt::format("the training frames of environments {}", fmt::join(names, ", ")));
    images.resize(train_dataset->size());
    std::iota(images.begin(), images.end(), size_t(0));
  } else if (!labelled) {  // every frame: choosing them by the classes in their masks would read labels
    images.resize(split.dataset->size());
    std::iota(images.begin(), images.end(), size_t(0));
  } else {
    images = cumulative ? sc.cumulative_train_images(k, split.index) : sc.train_images(sk, split.index);
  }
  data::LoaderOptions lo;
  lo.batch_size = tc.batch_size;
  lo.train = true;
  lo.workers = tc.workers;
  lo.prefetch = tc.prefetch;
  lo.seed = core::mix_seed(cfg_.seed, 0xDA7A, k);
  lo.augment = cfg_.augment;
  lo.lut = cumulative && !data_.domain() ? sc.cumulative_train_labels(k) : sc.train_labels(sk);
  // An unlabelled environment's masks are all 255 (UnlabelledDataset) or the teacher's temporal
  // pseudo-labels, already step labels with 255 for "none": both pass unchanged (the protocol's
  // table would turn 255 into background under MiB's protocol).
  if (!labelled) lo.lut = data::identity_lut();
  lo.saliency = method_.needs_saliency();
  // Consistency losses of unlabelled environments bring their own per-pixel inputs.
  const bool temporal_loss = !labelled && cfg_.adaptation.temporal_consistency > 0;
  const bool depth_loss = !labelled && cfg_.adaptation.depth_edges > 0;
  if (temporal_loss) {
    require_video("temporal_consistency");
    lo.next_frame = true;
    lo.prepare = [](data::Sample& s) { adaptation::add_flow_to_next(s); };
  }
  if (depth_loss) {
    CSEG_CHECK(split.dataset->has_depth(), "adaptation.depth_edges: environment '{}' has no depth maps ({})",
               data_.environments[k].name, split.dataset->describe());
    lo.depth = true;
  }
  if (group_) {
    lo.shard_rank = group_->rank();
    lo.shard_count = group_->size();
  }
  ctx.visit_train_data = [&](const std::function<void(const Batch&)>& fn) {
    data::LoaderOptions vo = lo;
    vo.shard_rank = 0, vo.shard_count = 1;  // every process sees all of it, as one process would
    vo.seed = core::mix_seed(cfg_.seed, 0x7151, k);
    vo.depth = vo.next_frame = false;  // a method's pass needs images and labels only
    vo.prepare = nullptr;
    data::Loader visit(*train_dataset, images, vo);
    visit.start_epoch(0);
    while (auto b = visit.next()) {
      b->to(device_);
      if (!labelled && !temporal) b->labels = teacher_labels(*old_model, b->images);  // e.g. what a replay buffer keeps
      fn(*b);
    }
  };
  core::seed_torch(core::mix_seed(cfg_.seed, 0x57E9, k));
  method_.on_step_begin(ctx);
  data::Loader loader(*train_dataset, images, lo);

  const int64_t per_epoch = static_cast<int64_t>(loader.batches_per_epoch());
  int64_t total = tc.iterations > 0        ? tc.iterations
                  : tc.steps_per_class > 0 ? int64_t(tc.steps_per_class) * (ctx.num_classes - ctx.num_old_classes)
                                           : int64_t(tc.epochs) * per_epoch;
  if (k == 0) total = std::max<int64_t>(1, std::llround(double(total) * tc.first_step_factor));
  if (tc.debug) total = std::min<int64_t>(total, tc.debug_iterations);
  ctx.total_iterations = total;
  ctx.iterations_per_epoch = per_epoch;
  const double lr = (k > 0 && cfg_.optim.lr_next > 0) ? cfg_.optim.lr_next : cfg_.optim.lr;
  std::vector<double> base_lrs;
  auto optimizer = make_step_optimizer(*model_, cfg_.optim, lr, base_lrs, method_.parameters());

  TrainState state;
  state.step = k;
  const std::string last = checkpoint(fmt::format("step{}_last.pt", k));
  if (fs::exists(last)) {
    state = load_checkpoint(last, *model_, optimizer.get(), &method_);
    log::info("[{}] step {}: resuming after epoch {} (iteration {}/{})", method_.name(), k, state.epoch,
                 state.iteration, total);
  }
  // train.shared_step0: a step 0 that an identical earlier run trained is taken from the shared
  // folder instead of trained again, and one trained here is left there. The lock is held until
  // this step 0 is stored, so a run with the same step 0 waits for it rather than training it too.
  std::unique_ptr<core::FileLock> step0_lock;
  std::string step0_file, step0_taken;
  if (k == 0 && !tc.shared_step0.empty() && !data_.domain() && !group_) {
    fs::create_directories(tc.shared_step0);
    step0_file = (fs::path(tc.shared_step0) / (step0_key(*train_dataset, images, lo.lut, total) + ".pt")).string();
    step0_lock = std::make_unique<core::FileLock>(step0_file + ".lock");
    if (state.iteration == 0 && fs::exists(step0_file)) {
      load_checkpoint(step0_file, *model_, nullptr, nullptr);
      state.iteration = total;
      step0_taken = step0_file;
      log::info("[{}] step 0: the model of an identical step 0 from {} (train.shared_step0)", method_.name(),
                   step0_file);
    }
  }
  const std::string what =
      cumulative && data_.domain() ? fmt::format("environments up to {}, all with their labels (joint reference)",
                                                 data_.environments[k].name)
      : data_.domain() ? fmt::format("environment {}{}", data_.environments[k].name, labelled ? "" : " (unlabelled)")
                     : fmt::format("classes {}", fmt::join(std::vector<std::string>(data_.class_names.begin() + ctx.num_old_classes,
                                                                                  data_.class_names.begin() + ctx.num_classes), ", "));
  log::info("[{}] step {}: {} | {} images | {} iterations ({} per epoch) | lr {}", method_.name(), k, what,
               images.size(), total, per_epoch, lr);

  StepTiming timing;
  timing.shared_step0 = step0_taken;
  timing.pseudo_labels = pseudo_label_stats;
  timing.train_images = images.size();
  const std::string metrics_path = (fs::path(run_dir_) / "metrics.jsonl").string();
  logging::Progress progress(fmt::format("[{}] step {}", method_.name(), k), total, tc.log_every);
  std::unique_ptr<logging::TensorBoardWriter> tb_step;
  if (primary())
    tb_step = std::make_unique<logging::TensorBoardWriter>((fs::path(run_dir_) / "tensorboard" / fmt::format("step{}", k)).string());
  // Data-parallel: every process starts the step from rank 0's weights, averages gradients, and
  // takes rank 0's BatchNorm statistics before each forward (as DDP's broadcast_buffers).
  std::vector<torch::Tensor> trained = model_->parameters();
  for (const auto& p : method_.parameters()) trained.push_back(p);
  std::vector<torch::Tensor> buffers = model_->buffers();
  std::unique_ptr<distributed::GradientAverager> averager;
  std::optional<core::GradScaler> scaler;  // fp16 only: a fresh scale each step, kept across a resume
  if (tc.precision == "fp16") {
    scaler.emplace();
    if (state.loss_scaler) scaler->restore(*state.loss_scaler);
  }
  struct SyncBatchNormScope {  // installed while this step trains, whatever ends it
    explicit SyncBatchNormScope(distributed::ProcessGroup* g) { distributed::set_sync_batch_norm_group(g); }
    ~SyncBatchNormScope() { distributed::set_sync_batch_norm_group(nullptr); }
  };
  std::unique_ptr<SyncBatchNormScope> sync_bn;
  if (group_ && group_->size() > 1) {
    std::vector<torch::Tensor> weights = trained;
    weights.insert(weights.end(), buffers.begin(), buffers.end());
    distributed::broadcast_tensors(*group_, weights);
    averager = std::make_unique<distributed::GradientAverager>(*group_);
    if (tc.sync_bn) sync_bn = std::make_unique<SyncBatchNormScope>(group_);
    // Dropout masks (and other random draws in the forward pass) differ between processes, as
    // they differ between the samples of one process's batch; rank 0 keeps the single-process
    // stream.
    if (group_->rank() > 0) core::seed_torch(core::mix_seed(core::mix_seed(cfg_.seed, 0x57E9, k), 0xD0, group_->rank()));
  }
  model_->train();
  release_gradients(*optimizer);  // none left from before the step (a method's own backward pass, say)
  double loss_avg = 0;
  // train.checkpoint_every / checkpoint_minutes: checkpoints within an epoch. Every epoch but the
  // step's last runs all per_epoch batches, so the iteration count says where in its epoch a
  // resumed run stands.
  auto last_saved = Clock::now();
  auto mid_epoch_checkpoint_due = [&] {
    const bool epoch_ends = state.iteration == total || state.iteration == int64_t(state.epoch + 1) * per_epoch;
    if (epoch_ends) return false;  // the end-of-epoch checkpoint follows
    return (tc.checkpoint_every > 0 && state.iteration % tc.checkpoint_every == 0) ||
           (tc.checkpoint_minutes > 0 && seconds_since(last_saved) >= 60 * tc.checkpoint_minutes);
  };
  while (state.iteration < total) {
    const int64_t first_batch = state.iteration - int64_t(state.epoch) * per_epoch;
    CSEG_CHECK(first_batch >= 0 && first_batch < per_epoch,
               "{}: iteration {} does not fall in epoch {} of {} batches (was the data or the batch size changed?)",
               last, state.iteration, state.epoch, per_epoch);
    loader.start_epoch(state.epoch, size_t(first_batch));
    const auto epoch_start = Clock::now();
    double wait = 0;
    int64_t seen = 0;
    while (state.iteration < total) {
      const auto t0 = Clock::now();
      auto batch = loader.next();
      wait += seconds_since(t0);
      if (!batch) break;
      batch->to(device_);
      const double f = lr_factor(cfg_.optim, state.iteration, total);
      for (size_t g = 0; g < optimizer->param_groups().size(); ++g) set_group_lr(*optimizer, g, base_lrs[g] * f);
      ctx.iteration = state.iteration;
      ctx.epoch = state.epoch;
      if (averager) distributed::broadcast_tensors(*group_, buffers);
      // Unlabelled environment: the teacher labels this batch (before a method such as replay
      // appends labelled samples of its own).
      torch::Tensor soft_targets;
      const int64_t own_samples = batch->size();
      if (!labelled) {
        // With temporal pseudo-labels the loader brought the labels already.
        if (!temporal && cfg_.adaptation.pseudo_labels == "hard")
          batch->labels = teacher_labels(*old_model, batch->images);
        else if (!temporal)
          soft_targets = teacher_logits(*old_model, batch->images);
        // The student learns the clean image's labels from a differently lit copy.
        if (cfg_.adaptation.student_jitter > 0)
          batch->images = adaptation::photometric_jitter(batch->images, cfg_.adaptation.student_jitter,
                                                         cfg_.augment.mean, cfg_.augment.std);
      }
      std::optional<core::AutocastScope> autocast(std::in_place, tc.precision, device_.is_cuda());  // until backward
      method_.before_forward(ctx, *batch);
      models::ModelOutput old_out;
      if (old_model) {
        torch::NoGradGuard no_grad;
        old_out = float_logits(old_model->forward(batch->images));
        ctx.old_output = &old_out;
      }
      // Cross-consistency under scale: the student sees the batch resized, and its logits are
      // brought back to the size of the labels.
      torch::Tensor student_input = batch->images;
      const double student_scale = !labelled && cfg_.adaptation.student_scale > 0
                                       ? draw_student_scale(cfg_.adaptation.student_scale, cfg_.seed, k, state.iteration)
                                       : 1.0;
      const int64_t h = batch->images.size(2), w = batch->images.size(3);
      if (student_scale != 1.0)  // at least 8 pixels a side
        student_input = models::resize_to(batch->images, std::max<int64_t>(8, std::llround(h * student_scale)),
                                          std::max<int64_t>(8, std::llround(w * student_scale)));
      auto out = float_logits(model_->forward(student_input));
      if (student_scale != 1.0) {
        out.logits = models::resize_to(out.logits, h, w);
        if (out.aux_logits.defined()) out.aux_logits = models::resize_to(out.aux_logits, h, w);
      }
      const std::string task_name = method_.task_loss_name().empty() ? cfg_.loss.name : method_.task_loss_name();
      methods::LossTerms terms;
      if (soft_targets.defined())
        terms.emplace_back("soft_pseudo_labels", adaptation::soft_pseudo_label_loss(out.logits.slice(0, 0, own_samples),
                                                                                   soft_targets, cfg_.adaptation.temperature));
      // A batch whose pixels are all ignored (no confident pseudo-label, or soft targets without
      // replayed samples) has no task loss: cross-entropy would be 0/0.
      const bool has_labels = labelled || batch->labels.ne(255).any().item<bool>();
      if (has_labels)
        terms.emplace_back(task_name, method_.task_loss(ctx, *batch, out));
      else
        terms.emplace_back(task_name, out.logits.sum() * 0);
      if (out.aux_logits.defined() && has_labels)
        terms.emplace_back("aux", cfg_.loss.aux_weight * losses::segmentation_loss(cfg_.loss, out.aux_logits, batch->labels));
      if (temporal_loss) {  // the next frame's prediction is a target: no graph kept for it
        torch::Tensor next_logits;
        {
          torch::NoGradGuard no_grad;
          next_logits = float_logits(model_->forward(batch->next_images)).logits;
        }
        terms.emplace_back("temporal_consistency",
                           cfg_.adaptation.temporal_consistency *
                               adaptation::temporal_consistency_loss(out.logits.slice(0, 0, own_samples), next_logits,
                                                                     batch->flow, batch->flow_valid));
      }
      if (depth_loss)
        terms.emplace_back("depth_edges", cfg_.adaptation.depth_edges *
                                              adaptation::depth_edge_loss(out.logits.slice(0, 0, own_samples),
                                                                          batch->depth, cfg_.adaptation.depth_edge_step));
      method_.add_loss_terms(ctx, *batch, out, terms);
      torch::Tensor loss = terms[0].second;
      for (size_t i = 1; i < terms.size(); ++i) loss = loss + terms[i].second;
      autocast.reset();
      const double lv = loss.item<double>();
      (scaler ? scaler->scale(loss) : loss).backward();
      if (averager) averager->average(trained);
      // Every process of a data-parallel run sees the same averaged gradients, so they agree on
      // whether to step; its own loss only counts in a single process.
      const bool taken = apply_update(method_, ctx, *optimizer, scaler ? &*scaler : nullptr, trained,
                                      group_ != nullptr || std::isfinite(lv));
      release_gradients(*optimizer);  // the next backward writes fresh ones
      ctx.old_output = nullptr;
      if (!taken && !scaler) {  // (fp16's scaler skips overflowing steps by design)
        std::vector<std::string> term_values;  // which term went wrong
        for (const auto& [name, t] : terms) term_values.push_back(fmt::format("{} {}", name, t.item<double>()));
        CSEG_CHECK(tc.nonfinite == "skip",
                   "[{}] step {} iteration {}: the loss is {} ({}; learning rate {} too high?); the update was not "
                   "applied, so the last checkpoint ({}) holds sound weights; lower the learning rate, or set "
                   "train.nonfinite: skip to skip such iterations",
                   method_.name(), k, state.iteration, lv, fmt::join(term_values, ", "), base_lrs[0] * f,
                   fs::exists(last) ? last : k > 0 ? checkpoint(fmt::format("step{}.pt", k - 1)) : std::string("none yet"));
        ++timing.skipped_nonfinite;
      }
      if (std::isfinite(lv)) loss_avg = state.iteration == 0 ? lv : 0.95 * loss_avg + 0.05 * lv;
      ++state.iteration;
      seen += batch->size() * (group_ ? group_->size() : 1);  // the global batch
      progress.update(state.iteration, fmt::format("loss {:.4f}", loss_avg));
      if (primary() && (state.iteration % tc.log_every == 0 || state.iteration == total)) {
        nlohmann::json line{{"method", method_.name()}, {"step", k}, {"iteration", state.iteration},
                            {"epoch", state.epoch}, {"lr", base_lrs[0] * f}, {"loss", lv}};
        for (const auto& [name, t] : terms) line["loss_" + name] = t.item<double>();
        core::append_line(metrics_path, line.dump());
        tb_step->scalar("lr", base_lrs[0] * f, state.iteration);
        tb_step->scalar("loss/total", lv, state.iteration);
        for (const auto& [name, t] : terms) tb_step->scalar("loss/" + name, t.item<double>(), state.iteration);
      }
      timing.iteration_seconds.push_back(seconds_since(t0));
      if (primary() && mid_epoch_checkpoint_due()) {
        if (scaler) state.loss_scaler = scaler->state();
        save_checkpoint(last, *model_, optimizer.get(), &method_, state);
        last_saved = Clock::now();
      }
    }
    timing.train_seconds += seconds_since(epoch_start);
    timing.data_wait_seconds += wait;
    timing.images += seen;
    ++state.epoch;
    if (cfg_.eval.val_every > 0 && state.epoch % cfg_.eval.val_every == 0) {
      const auto& val = data_.val_split(k);
      auto cm = evaluate(*model_, *val.dataset, sc.eval_images(sk, val.index), sc.eval_labels(sk),
                         method_eval_options(sc.classes_after(sk)));
      model_->train();
      const double miou = metrics::score(cm).miou;
      if (primary())
        core::append_line(metrics_path, nlohmann::json{{"method", method_.name()}, {"step", k}, {"epoch", state.epoch},
                                                       {"val_miou", miou}}.dump());
      log::info("[{}] step {} epoch {}: val mIoU {:.4f}", method_.name(), k, state.epoch, miou);
      if (miou > state.best_val) {
        state.best_val = miou;
        if (primary()) save_checkpoint(checkpoint(fmt::format("step{}_best.pt", k)), *model_, nullptr, &method_, state);
      }
    }
    if (scaler) state.loss_scaler = scaler->state();
    if (primary()) save_checkpoint(last, *model_, optimizer.get(), &method_, state);
    last_saved = Clock::now();
  }
  progress.finish(fmt::format("loss {:.4f}", loss_avg));
  if (step0_lock && step0_taken.empty()) save_checkpoint(step0_file, *model_, nullptr, nullptr, state);
  step0_lock.reset();
  if (timing.skipped_nonfinite > 0)
    log::warn("[{}] step {}: {} iteration(s) skipped: a non-finite loss or gradient (train.nonfinite: skip)",
              method_.name(), k, timing.skipped_nonfinite);
  if (scaler && scaler->skipped() > 0)
    log::info("[{}] step {}: fp16 loss scaling skipped {} iteration(s) whose gradients overflowed (scale now {})",
                 method_.name(), k, scaler->skipped(), scaler->current());
  ctx.iteration = state.iteration;
  if (cfg_.eval.use_best && state.best_val >= 0) {
    if (group_) group_->barrier();  // rank 0 has written the file the others read
    load_checkpoint(checkpoint(fmt::format("step{}_best.pt", k)), *model_, nullptr, nullptr);
  }
  method_.on_step_end(ctx);
  if (primary()) {
    save_checkpoint(checkpoint(fmt::format("step{}.pt", k)), *model_, nullptr, &method_, state);
    fs::remove(last);
  }
  timing.iterations = state.iteration;
  timing.epochs = state.epoch;
  timing.best_val = state.best_val;
  return timing;
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
    weights = {{"file", fs::absolute(m.pretrained).string()}, {"bytes", fs::file_size(m.pretrained)},
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
      {"data", {{"dataset", dataset.describe()}, {"ids", ids}, {"pixels", pixels}, {"lut", lut},
                {"saliency", method_.needs_saliency()}}},
      {"heads", model_->head_sizes()},
      {"model", {{"name", m.name}, {"aux", m.aux}, {"dropout", m.dropout}, {"norm", m.norm}, {"backbone", m.backbone},
                 {"output_stride", m.output_stride}, {"aspp_rates", m.aspp_rates}, {"layout", m.layout},
                 {"mib_eval_pooling", m.mib_eval_pooling}, {"unet_channels", m.unet_channels},
                 {"unet_upsampling", m.unet_upsampling}, {"pretrained_mode", m.pretrained_mode},
                 {"pretrained_norm_act", m.pretrained_norm_act}, {"channels_last", m.channels_last},
                 {"weights", weights}}},
      {"augment", {{"crop", a.crop_size}, {"scale", {a.scale_min, a.scale_max}}, {"hflip", a.hflip}, {"mean", a.mean},
                   {"std", a.std}}},
      {"optim", {{"lr", o.lr}, {"head_lr_mult", o.head_lr_mult}, {"momentum", o.momentum}, {"nesterov", o.nesterov},
                 {"weight_decay", o.weight_decay}, {"schedule", o.schedule}, {"power", o.power},
                 {"warmup", o.warmup_iters}}},
      {"loss", {{"name", l.name}, {"class_weights", l.class_weights}, {"focal_gamma", l.focal_gamma},
                {"ohem_keep", l.ohem_keep}, {"aux_weight", l.aux_weight}}},
      {"train", {{"batch", t.batch_size}, {"iterations", iterations}, {"precision", t.precision}, {"sync_bn", t.sync_bn}}},
      {"eval", {{"val_every", cfg_.eval.val_every}, {"use_best", cfg_.eval.use_best}}}};
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : j.dump()) h = (h ^ c) * 1099511628211ull;
  return fmt::format("{:016x}", h);
}

std::vector<Trainer::Evaluation> Trainer::evaluate_environments() {
  const auto& sc = *data_.scenario;
  std::vector<Evaluation> out;
  for (const auto& e : data_.environments) {
    const auto images = sc.eval_images(0, e.test.index);
    auto cm = evaluate(*model_, *e.test.dataset, images, sc.eval_labels(0), method_eval_options(sc.classes_after(0)));
    const auto scores = metrics::score(cm);
    out.push_back({std::move(cm), scores, images.size()});
  }
  model_->train();
  return out;
}

nlohmann::json Trainer::evaluate_step(int k, const StepTiming& timing) {
  const auto& sc = *data_.scenario;
  const auto start = Clock::now();
  // Class-incremental: the step's test images; old = step-0 classes, new = later ones, and
  // R[k][j] = mIoU over step j's classes. Domain-incremental: every environment's test set;
  // R[k][j] = mIoU on environment j (past and future), old = mean over the earlier environments,
  // new = the current one, all = mean over the environments seen so far; the per-class figures and
  // the confusion matrix are the current environment's.
  Evaluation current;  // the step's own test set: per-class figures and confusion matrix
  std::optional<double> old_miou, new_miou, all_miou;
  std::vector<std::optional<double>> task_miou;
  std::vector<std::string> new_names;
  if (data_.domain()) {
    auto all = evaluate_environments();
    for (const auto& e : all) task_miou.push_back(e.scores.miou);
    current = std::move(all[k]);
    auto mean = [&](int from, int to) -> std::optional<double> {
      if (from >= to) return std::nullopt;
      double sum = 0;
      for (int j = from; j < to; ++j) sum += task_miou[j].value_or(0);
      return sum / (to - from);
    };
    old_miou = mean(0, k);
    new_miou = task_miou[k];
    all_miou = mean(0, k + 1);
    new_names = {data_.environments[k].name};
  } else {
    const auto images = sc.eval_images(k, data_.test.index);
    current.images = images.size();
    current.cm = evaluate(*model_, *data_.test.dataset, images, sc.eval_labels(k), method_eval_options(sc.classes_after(k)));
    model_->train();
    current.scores = metrics::score(current.cm);
    old_miou = metrics::mean_iou(current.scores, 0, sc.classes_after(0));
    if (k > 0) new_miou = metrics::mean_iou(current.scores, sc.classes_after(0), sc.classes_after(k));
    all_miou = current.scores.miou;
    for (int j = 0; j <= k; ++j)
      task_miou.push_back(metrics::mean_iou(current.scores, sc.first_label(j), sc.classes_after(j)));
    new_names.assign(data_.class_names.begin() + (k == 0 ? 0 : sc.classes_after(k - 1)),
                     data_.class_names.begin() + sc.classes_after(k));
  }
  const double eval_seconds = seconds_since(start);
  const auto& s = current.scores;
  const auto& cm = current.cm;
  const int all_end = sc.classes_after(data_.scenario_step(k));
  nlohmann::json test{{"images", current.images},
                      {"miou", opt_json(all_miou)},
                      {"miou_old", opt_json(old_miou)},
                      {"miou_new", opt_json(new_miou)},
                      {"hiou", (old_miou && new_miou) ? nlohmann::json(metrics::harmonic_iou(*old_miou, *new_miou))
                                                      : nlohmann::json()},
                      {"pixel_accuracy", s.pixel_accuracy},
                      {"mean_accuracy", s.mean_accuracy},
                      {"fw_iou", s.fw_iou},
                      {"per_class_iou", opt_json(s.iou)},
                      {"precision", opt_json(s.precision)},
                      {"recall", opt_json(s.recall)},
                      {"eval_seconds", eval_seconds}};
  nlohmann::json confusion = nlohmann::json::array();
  for (int t = 0; t < cm.num_classes(); ++t) {
    std::vector<int64_t> row(cm.counts().begin() + size_t(t) * cm.num_classes(),
                             cm.counts().begin() + size_t(t + 1) * cm.num_classes());
    confusion.push_back(row);
  }
  test["confusion"] = confusion;
  const double ips = timing.train_seconds > 0 ? timing.images / timing.train_seconds : 0;
  log::info("[{}] step {}: mIoU all {:.4f} | old {} | new {} ({} test images)", method_.name(), k,
               all_miou.value_or(0), old_miou ? fmt::format("{:.4f}", *old_miou) : "-",
               new_miou ? fmt::format("{:.4f}", *new_miou) : "-", current.images);
  return {{"step", k},
          {"new_classes", new_names},  // domain scenarios: the environment's name
          {"num_classes", all_end},
          {"train_images", timing.train_images},
          {"iterations", timing.iterations},
          {"epochs", timing.epochs},
          {"train_seconds", timing.train_seconds},
          {"images_per_second", ips},
          {"iteration_ms", iteration_ms(timing.iteration_seconds)},
          {"peak_rss_mb", core::peak_rss_mb()},
          {"method_stats", method_.stats()},
          {"data_wait_fraction", timing.train_seconds > 0 ? timing.data_wait_seconds / timing.train_seconds : 0},
          {"val_best_miou", timing.best_val >= 0 ? nlohmann::json(timing.best_val) : nlohmann::json()},
          {"task_miou", opt_json(task_miou)},
          {"pseudo_labels", timing.pseudo_labels},
          {"shared_step0", timing.shared_step0.empty() ? nlohmann::json() : nlohmann::json(timing.shared_step0)},
          {"skipped_nonfinite", timing.skipped_nonfinite},
          {"test", test}};
}

}  // namespace cseg::engine
