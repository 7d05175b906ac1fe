#include "cseg/distributed/process_group.h"

#include <torch/version.h>

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef CSEG_WITH_NCCL  // set by CMake for a CUDA LibTorch (with USE_C10D_NCCL, which the header needs)
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <cstdlib>

#include "cseg/core/error.h"

namespace cseg::distributed {

namespace {

int env_int(const char* name, int fallback, int min_value, int max_value) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  CSEG_CHECK(end && *end == '\0' && x >= min_value && x <= max_value,
             "environment variable {}='{}': expected an integer in [{}, {}]", name, v, min_value, max_value);
  return int(x);
}

/// The c10d class that ProcessGroupGloo and ProcessGroupNCCL derive from, and whose collectives
/// cseg calls: ProcessGroup in LibTorch 1.13, Backend in 2.x (where a ProcessGroup dispatches to
/// one Backend per device type).
#if TORCH_VERSION_MAJOR >= 2
using Collectives = c10d::Backend;
#else
using Collectives = c10d::ProcessGroup;
#endif

/// Any of c10d's process groups behind cseg's interface: Gloo (CPU tensors; CUDA ones too in a
/// CUDA build) or NCCL (CUDA tensors), both met through one TCPStore hosted by rank 0.
class C10dGroup : public ProcessGroup {
 public:
  C10dGroup(const Environment& env, std::chrono::seconds timeout, Backend backend) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(timeout);
    c10d::TCPStoreOptions store_options;
    store_options.port = uint16_t(env.master_port);
    store_options.isServer = env.rank == 0;
    store_options.numWorkers = size_t(env.world_size);
    store_options.waitWorkers = true;
    store_options.timeout = ms;
    try {
      store_ = c10::make_intrusive<c10d::TCPStore>(env.master_addr, store_options);
      if (backend == Backend::Gloo) {
        auto options = c10d::ProcessGroupGloo::Options::create(ms);
        // The interface that reaches the master: loopback for one machine, the LAN across machines.
        options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(env.master_addr));
        options->threads = 2;
        group_ = c10::make_intrusive<c10d::ProcessGroupGloo>(store_, env.rank, env.world_size, options);
      } else {
#ifdef CSEG_WITH_NCCL
        auto options = c10d::ProcessGroupNCCL::Options::create();
        options->timeout = ms;
        group_ = c10::make_intrusive<c10d::ProcessGroupNCCL>(store_, env.rank, env.world_size, options);
#endif
      }
    } catch (const std::exception& e) {
      fail("rank {} of {}: cannot join the {} process group at {}:{} ({})", env.rank, env.world_size,
           backend_name(backend), env.master_addr, env.master_port, e.what());
    }
  }
  int rank() const override { return group_->getRank(); }
  int size() const override { return group_->getSize(); }

  void all_reduce_sum(std::vector<torch::Tensor>& tensors) override {
    std::vector<c10::intrusive_ptr<c10d::Work>> pending;
    for (auto& t : tensors) {
      std::vector<at::Tensor> one{t};
      pending.push_back(group_->allreduce(one));
    }
    for (auto& w : pending) w->wait();
  }
  void broadcast(std::vector<torch::Tensor>& tensors, int root) override {
    c10d::BroadcastOptions o;
    o.rootRank = root;
    std::vector<c10::intrusive_ptr<c10d::Work>> pending;
    for (auto& t : tensors) {
      std::vector<at::Tensor> one{t};
      pending.push_back(group_->broadcast(one, o));
    }
    for (auto& w : pending) w->wait();
  }
  void barrier() override { group_->barrier()->wait(); }

 private:
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<Collectives> group_;
};

}  // namespace

Environment environment_from_env() {
  Environment e;
  e.world_size = env_int("WORLD_SIZE", 1, 1, 1 << 16);
  e.rank = env_int("RANK", 0, 0, e.world_size - 1);
  e.local_rank = env_int("LOCAL_RANK", e.rank, 0, e.world_size - 1);
  e.master_port = env_int("MASTER_PORT", 29500, 1, 65535);
  if (const char* a = std::getenv("MASTER_ADDR"); a && *a) e.master_addr = a;
  return e;
}

bool nccl_available() {
#ifdef CSEG_WITH_NCCL
  return true;
#else
  return false;
#endif
}

std::string backend_name(Backend backend) { return backend == Backend::Nccl ? "NCCL" : "Gloo"; }

Backend backend_for(torch::Device device) {
  return device.is_cuda() && nccl_available() ? Backend::Nccl : Backend::Gloo;
}

std::unique_ptr<ProcessGroup> ProcessGroup::connect(const Environment& env, std::chrono::seconds timeout,
                                                    Backend backend) {
  CSEG_CHECK(env.world_size >= 1 && env.rank >= 0 && env.rank < env.world_size, "rank {} is outside world size {}",
             env.rank, env.world_size);
  CSEG_CHECK(backend != Backend::Nccl || nccl_available(),
             "the NCCL backend needs cseg built against a CUDA LibTorch (this build has Gloo only)");
  return std::make_unique<C10dGroup>(env, timeout, backend);
}

GradientAverager::GradientAverager(ProcessGroup& group, size_t bucket_bytes)
    : group_(group), bucket_bytes_(std::max<size_t>(bucket_bytes, 1)) {}

void GradientAverager::average(const std::vector<torch::Tensor>& parameters) {
  if (group_.size() == 1) return;
  torch::NoGradGuard no_grad;
  // Buckets of consecutive gradients of one dtype, about bucket_bytes each.
  std::vector<std::vector<torch::Tensor>> buckets;
  size_t bytes = 0;
  for (const auto& p : parameters) {
    const auto& g = p.grad();
    if (!g.defined()) continue;
    const size_t b = size_t(g.numel()) * g.element_size();
    if (buckets.empty() || bytes + b > bucket_bytes_ || buckets.back().front().scalar_type() != g.scalar_type()) {
      buckets.emplace_back();
      bytes = 0;
    }
    buckets.back().push_back(g);
    bytes += b;
  }
  std::vector<torch::Tensor> flat;
  for (const auto& bucket : buckets) {
    std::vector<torch::Tensor> views;
    for (const auto& g : bucket) views.push_back(g.reshape({-1}));
    flat.push_back(torch::cat(views));
  }
  group_.all_reduce_sum(flat);
  const double inv = 1.0 / group_.size();
  for (size_t i = 0; i < buckets.size(); ++i) {
    int64_t offset = 0;
    for (auto& g : buckets[i]) {
      const int64_t n = g.numel();
      g.copy_(flat[i].slice(0, offset, offset + n).view_as(g).mul_(inv));
      offset += n;
    }
  }
}

void broadcast_tensors(ProcessGroup& group, const std::vector<torch::Tensor>& tensors) {
  if (group.size() == 1 || tensors.empty()) return;
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> flat;
  for (const auto& t : tensors) flat.push_back(t.detach());
  group.broadcast(flat, 0);
}

}  // namespace cseg::distributed
