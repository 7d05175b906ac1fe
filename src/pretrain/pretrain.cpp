#include "cseg/pretrain/pretrain.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <random>

#include "cseg/config/config.h"
#include "cseg/core/clock.h"
#include "cseg/core/device.h"
#include "cseg/core/error.h"
#include "cseg/core/files.h"
#include "cseg/core/log.h"
#include "cseg/core/runtime.h"
#include "cseg/data/class_index.h"
#include "cseg/engine/checkpoint.h"
#include "cseg/engine/optimizer.h"
#include "cseg/logging/progress.h"
#include "cseg/models/segmenter.h"
#include "cseg/pretrain/images.h"

namespace fs = std::filesystem;

namespace cseg::pretrain {

namespace {

constexpr int64_t kFormat = 1;  // cseg checkpoint format (engine/checkpoint.cpp), read by weights/

/// A batch of images as a normalised [N, 3, S, S] tensor, loaded in parallel.
torch::Tensor load_batch(const ClassificationImages& images, const config::PretrainDataConfig& d,
                         const std::vector<size_t>& which, const std::function<void(size_t, uint8_t*)>& load,
                         int threads) {
  const int64_t s = d.image_size, n = int64_t(which.size());
  auto rgb = torch::empty({n, s, s, 3}, torch::kUInt8);
  uint8_t* base = rgb.data_ptr<uint8_t>();
  data::parallel_for(which.size(), threads, [&](size_t i) { load(which[i], base + i * size_t(s * s * 3)); });
  auto x = rgb.permute({0, 3, 1, 2}).to(torch::kFloat).div_(255.0);
  auto mean = torch::tensor(d.mean, torch::kFloat).view({1, 3, 1, 1});
  auto stdv = torch::tensor(d.std, torch::kFloat).view({1, 3, 1, 1});
  return ((x - mean) / stdv).contiguous();
}

/// The classifier's logits: the encoder's map pooled over space, then one linear layer.
torch::Tensor classify(models::Segmenter& model, torch::nn::Linear& fc, const torch::Tensor& x) {
  return fc->forward(model.encode(x).mean({2, 3}));
}

/// Held-out top-1 accuracy (the model in eval mode while it runs).
double held_out_top1(models::Segmenter& model, torch::nn::Linear& fc, const ClassificationImages& images,
                     const config::PretrainConfig& cfg, const torch::Device& device, int threads) {
  torch::NoGradGuard no_grad;
  model.eval();
  fc->eval();
  int64_t right = 0;
  const size_t n = images.held_out_size(), b = size_t(std::max(cfg.train.batch_size, 64));
  for (size_t start = 0; start < n; start += b) {
    std::vector<size_t> which(std::min(b, n - start));
    std::iota(which.begin(), which.end(), start);
    auto x = load_batch(
        images, cfg.data, which, [&](size_t i, uint8_t* p) { images.held_out_image(i, p); }, threads);
    auto predicted = classify(model, fc, x.to(device)).argmax(1).cpu();
    for (size_t i = 0; i < which.size(); ++i)
      right += predicted[int64_t(i)].item<int64_t>() == images.held_out_label(which[i]);
  }
  model.train();
  fc->train();
  return double(right) / double(n);
}

/// The tensors of the model's backbone (Segmenter::backbone_prefixes, each a direct child module)
/// as a cseg checkpoint that weights::read_weights reads: {format, model: {<child>: ...}}.
void save_encoder(const std::string& path, models::Segmenter& model) {
  torch::serialize::OutputArchive root, m;
  root.write("format", torch::tensor(kFormat));
  int children = 0;
  for (const auto& child : model.named_children()) {
    const auto prefixes = model.backbone_prefixes();
    if (std::find(prefixes.begin(), prefixes.end(), child.key() + ".") == prefixes.end()) continue;
    torch::serialize::OutputArchive a;
    child.value()->save(a);
    m.write(child.key(), a);
    ++children;
  }
  CSEG_CHECK(children == int(model.backbone_prefixes().size()),
             "pretrain: the model's backbone prefixes ({}) are not "
             "all modules of it",
             fmt::join(model.backbone_prefixes(), ", "));
  root.write("model", m);
  engine::save_archive(root, path);
}

struct Counters {
  int64_t iteration = 0;
  double top1 = -1;  ///< the last held-out evaluation (-1: none yet)
};

void save_state(const std::string& path, models::Segmenter& model, torch::nn::Linear& fc,
                torch::optim::Optimizer& optimizer, const Counters& c) {
  torch::serialize::OutputArchive root, m, f, o;
  root.write("format", torch::tensor(kFormat));
  root.write("iteration", torch::tensor(c.iteration));
  root.write("top1", torch::tensor(c.top1, torch::kFloat64));
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    root.write("rng", gen.get_state());
  }
  model.save(m);
  root.write("model", m);
  fc->save(f);
  root.write("classifier", f);
  optimizer.save(o);
  root.write("optimizer", o);
  engine::save_archive(root, path);
}

Counters load_state(const std::string& path, models::Segmenter& model, torch::nn::Linear& fc,
                    torch::optim::Optimizer& optimizer, const torch::Device& device) {
  torch::serialize::InputArchive in;
  try {
    in.load_from(path, device);
  } catch (const std::exception&) {
    fail(
        "pretraining checkpoint '{}' cannot be read (truncated, or not a cseg pretraining checkpoint); delete it to "
        "start the run again",
        path);
  }
  Counters c;
  torch::Tensor t;
  CSEG_CHECK(in.try_read("iteration", t), "'{}' is not a cseg pretraining checkpoint", path);
  c.iteration = t.item<int64_t>();
  in.read("top1", t);
  c.top1 = t.item<double>();
  torch::serialize::InputArchive m, f, o;
  in.read("model", m);
  model.load(m);
  in.read("classifier", f);
  fc->load(f);
  in.read("optimizer", o);
  optimizer.load(o);
  torch::Tensor rng;
  if (in.try_read("rng", rng)) {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(rng.cpu());
  }
  return c;
}

/// The training images of `epoch` in their order for that epoch.
std::vector<size_t> epoch_order(size_t n, uint64_t seed, int64_t epoch) {
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t(0));
  std::mt19937_64 rng(core::mix_seed(seed, 0x0D3E, uint64_t(epoch)));
  std::shuffle(order.begin(), order.end(), rng);
  return order;
}

}  // namespace

std::string encoder_weights(const config::PretrainConfig& cfg) {
  return (fs::path(cfg.output_dir) / "encoder.pt").string();
}

nlohmann::json run_pretraining(const config::PretrainConfig& cfg) {
  const fs::path out(cfg.output_dir);
  const auto results_path = out / "results.json";
  if (fs::exists(encoder_weights(cfg)) && fs::exists(results_path)) {
    auto done = nlohmann::json::parse(core::read_text(results_path.string()), nullptr, false);
    CSEG_CHECK(!done.is_discarded(), "'{}' is not valid JSON; delete the folder {} to pretrain again",
               results_path.string(), cfg.output_dir);
    log::info("pretraining '{}' is done: {} (held-out top-1 {:.2f} %)", cfg.name, encoder_weights(cfg),
              100 * done.value("top1", 0.0));
    return done;
  }
  const auto device = core::parse_device(cfg.device);
  const int threads = cfg.threads > 0 ? cfg.threads : int(std::max(1u, std::thread::hardware_concurrency()));
  fs::create_directories(out / "checkpoints");
  auto images = open_classification_images(cfg.data);
  const int classes = int(images->class_names().size());
  log::info("pretraining '{}': {} encoder on {}", cfg.name, cfg.model.name, images->describe());

  core::seed_torch(core::mix_seed(cfg.seed, 0xC0DE));
  auto model = models::make_model(cfg.model, classes);  // its decoder and head are not trained
  int64_t channels = 0;
  {
    torch::NoGradGuard no_grad;
    model->eval();
    channels = model->encode(torch::zeros({1, 3, cfg.data.image_size, cfg.data.image_size})).size(1);
    model->train();
  }
  torch::nn::Linear fc(channels, classes);
  model->to(device);
  fc->to(device);
  // The optimiser over the encoder and the linear layer; biases and norm weights without weight
  // decay, the linear layer at head_lr_mult x the rate.
  std::vector<engine::ParamGroup> groups(3);
  for (auto& p : model->encoder_parameters()) groups[p.dim() <= 1 ? 1 : 0].params.push_back(p);
  for (auto& p : fc->parameters()) groups[2].params.push_back(p);
  groups[0].lr = groups[1].lr = cfg.optim.lr;
  groups[2].lr = cfg.optim.lr * cfg.optim.head_lr_mult;
  groups[1].decay = false;
  std::vector<double> lrs;
  auto optimizer_ptr = engine::make_optimizer(cfg.optim, groups, lrs);
  auto& optimizer = *optimizer_ptr;

  const int64_t batch = cfg.train.batch_size;
  const int64_t per_epoch = int64_t(images->train_size()) / batch;
  CSEG_CHECK(per_epoch > 0, "pretraining '{}': {} training images are fewer than one batch of {}", cfg.name,
             images->train_size(), batch);
  const int64_t total = cfg.train.iterations > 0 ? cfg.train.iterations : int64_t(cfg.train.epochs) * per_epoch;
  const int64_t eval_every = cfg.train.eval_every > 0 ? cfg.train.eval_every : per_epoch;
  const int64_t checkpoint_every = cfg.train.checkpoint_every > 0 ? cfg.train.checkpoint_every : per_epoch;
  const std::string last = (out / "checkpoints" / "last.pt").string();
  const std::string metrics = (out / "metrics.jsonl").string();
  Counters c;
  if (fs::exists(last)) {
    c = load_state(last, *model, fc, optimizer, device);
    log::info("pretraining '{}': resuming at iteration {}/{}", cfg.name, c.iteration, total);
  }
  log::info("pretraining '{}': {} iterations of batch {} ({} per epoch), lr {}", cfg.name, total, batch, per_epoch,
            cfg.optim.lr);
  model->train();
  fc->train();
  logging::Progress progress(fmt::format("pretrain {}", cfg.name), total, cfg.train.log_every);
  const auto start = core::Clock::now();
  double loss_avg = 0;
  int64_t epoch = -1;
  std::vector<size_t> order;
  while (c.iteration < total) {
    if (c.iteration / per_epoch != epoch) {
      epoch = c.iteration / per_epoch;
      order = epoch_order(images->train_size(), cfg.seed, epoch);
    }
    const int64_t b = c.iteration % per_epoch;
    std::vector<size_t> which(order.begin() + b * batch, order.begin() + (b + 1) * batch);
    torch::Tensor labels = torch::empty({batch}, torch::kLong);
    for (int64_t i = 0; i < batch; ++i) labels[i] = images->train_label(which[size_t(i)]);
    auto x = load_batch(
        *images, cfg.data, which,
        [&](size_t i, uint8_t* p) { images->train_image(i, core::mix_seed(cfg.seed, uint64_t(epoch), i), p); },
        threads);
    const double f = engine::lr_factor(cfg.optim, c.iteration, total);  // as segmentation training schedules it
    for (size_t g = 0; g < lrs.size(); ++g) engine::set_group_lr(optimizer, g, lrs[g] * f);
    auto loss = torch::nn::functional::cross_entropy(classify(*model, fc, x.to(device)), labels.to(device));
    optimizer.zero_grad();
    loss.backward();
    const double lv = loss.item<double>();
    CSEG_CHECK(std::isfinite(lv), "pretraining '{}' iteration {}: the loss is {} (learning rate {} too high?)",
               cfg.name, c.iteration, lv, lrs[0] * f);
    optimizer.step();
    ++c.iteration;
    loss_avg = c.iteration == 1 ? lv : 0.95 * loss_avg + 0.05 * lv;
    progress.update(c.iteration, fmt::format("loss {:.4f}", loss_avg));
    if (c.iteration % cfg.train.log_every == 0 || c.iteration == total)
      core::append_line(
          metrics,
          nlohmann::json{{"iteration", c.iteration}, {"epoch", epoch}, {"lr", lrs[0] * f}, {"loss", lv}}.dump());
    if (c.iteration % eval_every == 0 || c.iteration == total) {
      c.top1 = held_out_top1(*model, fc, *images, cfg, device, threads);
      core::append_line(metrics, nlohmann::json{{"iteration", c.iteration}, {"held_out_top1", c.top1}}.dump());
      log::info("pretraining '{}' iteration {}: held-out top-1 {:.2f} %", cfg.name, c.iteration, 100 * c.top1);
    }
    if (c.iteration % checkpoint_every == 0 || c.iteration == total) save_state(last, *model, fc, optimizer, c);
  }
  progress.finish(fmt::format("loss {:.4f}", loss_avg));
  const double seconds = core::seconds_since(start);
  nlohmann::json results{{"schema", "cseg.pretrain/1"},
                         {"name", cfg.name},
                         {"hash", config::pretrain_hash(cfg)},
                         {"model", cfg.model.name},
                         {"data", images->describe()},
                         {"classes", images->class_names()},
                         {"train_images", images->train_size()},
                         {"held_out_images", images->held_out_size()},
                         {"iterations", total},
                         {"batch_size", batch},
                         {"top1", c.top1},
                         {"chance", 1.0 / classes},
                         {"seconds_this_run", seconds},
                         {"threads", threads},
                         {"weights", encoder_weights(cfg)}};
  core::write_text_atomic(results_path.string(), results.dump(2) + "\n");
  save_encoder(encoder_weights(cfg), *model);  // last: its presence marks the run finished
  log::info("pretraining '{}' done: held-out top-1 {:.2f} % (chance {:.2f} %), encoder weights {}", cfg.name,
            100 * c.top1, 100.0 / classes, encoder_weights(cfg));
  return results;
}

std::string ensure_encoder(const std::string& path, const std::string& env_path) {
  const auto cfg = config::parse_pretrain(config::load({path, {}, env_path}));
  const std::string weights = encoder_weights(cfg);
  if (fs::exists(weights)) return weights;
  fs::create_directories(cfg.output_dir);
  core::FileLock lock((fs::path(cfg.output_dir) / ".lock").string());
  if (!fs::exists(weights)) {
    log::info("model.pretrain: {} has no encoder yet (folder {}); pretraining it first", path, cfg.output_dir);
    core::write_text_atomic((fs::path(cfg.output_dir) / "config.yaml").string(),
                            config::load({path, {}, env_path}).dump());
    run_pretraining(cfg);
  }
  return weights;
}

}  // namespace cseg::pretrain
