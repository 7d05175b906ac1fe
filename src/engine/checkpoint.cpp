#include "cseg/engine/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <torch/cuda.h>

#include <cstdio>
#include <filesystem>

#include "cseg/core/error.h"
#include "cseg/core/files.h"

namespace fs = std::filesystem;

namespace cseg::engine {

namespace {
constexpr int64_t kFormat = 1;

torch::Tensor ints(const std::vector<int>& v) {
  std::vector<int64_t> w(v.begin(), v.end());
  return torch::tensor(w, torch::kInt64);
}
}  // namespace

void save_archive(torch::serialize::OutputArchive& archive, const std::string& path) {
  core::replace_atomically(path, [&](const std::string& tmp) {
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    CSEG_CHECK(f != nullptr, "cannot open '{}' for writing", tmp);
    // LibTorch's writer throws from its destructor when a write falls short, which ends the
    // process; so it is told that every write succeeded, and the outcome is checked here.
    bool ok = true;
    archive.save_to([&](const void* data, size_t n) -> size_t {
      if (ok && n > 0 && std::fwrite(data, 1, n, f) != n) ok = false;
      return n;
    });
    ok = std::fflush(f) == 0 && ok;
    ok = std::fclose(f) == 0 && ok;
    CSEG_CHECK(ok, "the write did not complete (disk full?)");
  });
}

void save_checkpoint(const std::string& path, models::Segmenter& model, torch::optim::Optimizer* optimizer,
                     const methods::Method* method, const TrainState& s) {
  torch::serialize::OutputArchive root;
  root.write("format", torch::tensor(kFormat));
  root.write("step", torch::tensor(int64_t(s.step)));
  root.write("epoch", torch::tensor(int64_t(s.epoch)));
  root.write("iteration", torch::tensor(s.iteration));
  root.write("best_val", torch::tensor(s.best_val, torch::kFloat64));
  root.write("heads", ints(model.head_sizes()));
  if (s.loss_scaler)
    root.write("loss_scaler",
               torch::tensor({s.loss_scaler->scale, double(s.loss_scaler->good_steps), double(s.loss_scaler->skipped)},
                             torch::kFloat64));
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    root.write("rng", gen.get_state());
  }
  // Each GPU's generator too (dropout on a GPU draws from it), so a resumed GPU run retraces.
  if (torch::cuda::is_available()) {
    torch::serialize::OutputArchive cuda;
    for (size_t i = 0; i < torch::cuda::device_count(); ++i) {
      at::Generator gen = at::globalContext().defaultGenerator(c10::Device(c10::kCUDA, c10::DeviceIndex(i)));
      std::lock_guard<std::mutex> lock(gen.mutex());
      cuda.write(std::to_string(i), gen.get_state());
    }
    root.write("cuda_rng", cuda);
  }
  torch::serialize::OutputArchive m;
  model.save(m);
  root.write("model", m);
  if (optimizer) {
    torch::serialize::OutputArchive o;
    optimizer->save(o);
    root.write("optimizer", o);
  }
  if (method) {
    torch::serialize::OutputArchive a;
    method->save(a);
    root.write("method", a);
  }
  fs::create_directories(fs::path(path).parent_path());
  save_archive(root, path);
}

namespace {
/// Every tensor lands on `device` (a model's, so loading keeps its parameters where they are).
torch::serialize::InputArchive open(const std::string& path, torch::Device device = torch::kCPU) {
  CSEG_CHECK(fs::exists(path), "checkpoint '{}' does not exist", path);
  torch::serialize::InputArchive in;
  try {
    in.load_from(path, device);
  } catch (const std::exception& e) {
    fail("checkpoint '{}' cannot be read (not a cseg checkpoint, or truncated)", path);
  }
  torch::Tensor format;
  CSEG_CHECK(in.try_read("format", format) && format.item<int64_t>() == kFormat,
             "checkpoint '{}' is not a cseg checkpoint of format {}", path, kFormat);
  return in;
}

TrainState read_state(torch::serialize::InputArchive& in) {
  TrainState s;
  torch::Tensor t;
  in.read("step", t);
  s.step = static_cast<int>(t.item<int64_t>());
  in.read("epoch", t);
  s.epoch = static_cast<int>(t.item<int64_t>());
  in.read("iteration", t);
  s.iteration = t.item<int64_t>();
  in.read("best_val", t);
  s.best_val = t.item<double>();
  torch::Tensor heads;
  in.read("heads", heads);
  for (int64_t i = 0; i < heads.numel(); ++i) s.heads.push_back(static_cast<int>(heads[i].item<int64_t>()));
  torch::Tensor scaler;
  if (in.try_read("loss_scaler", scaler)) {
    scaler = scaler.cpu();
    CSEG_CHECK(scaler.numel() == 3 && scaler[0].item<double>() > 0, "checkpoint: malformed loss_scaler entry");
    s.loss_scaler = core::GradScaler::State{scaler[0].item<double>(), int(scaler[1].item<double>()),
                                            int64_t(scaler[2].item<double>())};
  }
  return s;
}
}  // namespace

TrainState read_checkpoint_state(const std::string& path) {
  auto in = open(path);
  return read_state(in);
}

TrainState load_checkpoint(const std::string& path, models::Segmenter& model, torch::optim::Optimizer* optimizer,
                           methods::Method* method) {
  auto in = open(path, models::device_of(model));
  TrainState s = read_state(in);
  CSEG_CHECK(s.heads == model.head_sizes(), "checkpoint '{}' has heads [{}] but the model has [{}]", path,
             fmt::join(s.heads, ","), fmt::join(model.head_sizes(), ","));
  torch::serialize::InputArchive m;
  in.read("model", m);
  model.load(m);
  if (optimizer) {
    torch::serialize::InputArchive o;
    if (in.try_read("optimizer", o)) optimizer->load(o);
  }
  if (method) {
    torch::serialize::InputArchive a;
    if (in.try_read("method", a)) method->load(a);
  }
  torch::Tensor rng;
  if (in.try_read("rng", rng)) {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(rng.cpu());
  }
  torch::serialize::InputArchive cuda;
  if (torch::cuda::is_available() && in.try_read("cuda_rng", cuda))
    for (size_t i = 0; i < torch::cuda::device_count(); ++i) {
      torch::Tensor state;
      if (!cuda.try_read(std::to_string(i), state)) continue;
      at::Generator gen = at::globalContext().defaultGenerator(c10::Device(c10::kCUDA, c10::DeviceIndex(i)));
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(state.cpu());
    }
  return s;
}

}  // namespace cseg::engine
