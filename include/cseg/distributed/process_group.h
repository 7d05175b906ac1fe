#pragma once
/// Data-parallel training across processes on torch.distributed's c10d engine: Gloo on CPU,
/// NCCL for CUDA tensors when built against a CUDA LibTorch, rendezvous through a TCPStore,
/// following torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT).
/// c10d stays inside src/distributed/: this header only needs tensors.
#include <torch/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace cseg::distributed {

struct Environment {
  int rank = 0, world_size = 1, local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  bool distributed() const { return world_size > 1; }
};

/// Reads torchrun's variables; a single process (world size 1) when WORLD_SIZE is unset. Throws
/// naming the variable when one is malformed or out of range.
Environment environment_from_env();

enum class Backend { Gloo, Nccl };
/// True when this build has c10d's NCCL process group (a CUDA LibTorch; CMake's CSEG_NCCL).
bool nccl_available();
/// What torch.distributed's default would pick: NCCL for a CUDA device when available, else Gloo.
Backend backend_for(torch::Device device);
std::string backend_name(Backend backend);

/// A process group of `world_size` processes. Every collective must be called by every process
/// in the same order (as in torch.distributed).
class ProcessGroup {
 public:
  /// Connects to the others (rank 0 hosts the TCPStore); waits up to `timeout` for all of them.
  /// Asking for NCCL in a build without it is an error.
  static std::unique_ptr<ProcessGroup> connect(const Environment& env, std::chrono::seconds timeout,
                                               Backend backend = Backend::Gloo);
  virtual ~ProcessGroup() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// Sums each tensor over all processes, in place; the collectives run concurrently.
  virtual void all_reduce_sum(std::vector<torch::Tensor>& tensors) = 0;
  /// Copies rank `root`'s tensors into every process's, in place.
  virtual void broadcast(std::vector<torch::Tensor>& tensors, int root = 0) = 0;
  virtual void barrier() = 0;
};

/// Averages the gradients of `parameters` over the group after backward: gradients are packed
/// into flat buckets of about `bucket_bytes`, each bucket reduced in one collective (all buckets
/// in flight at once), then unpacked and divided by the process count. Parameters without a
/// gradient (frozen, unused) are skipped; every process has the same model, so they agree.
class GradientAverager {
 public:
  GradientAverager(ProcessGroup& group, size_t bucket_bytes = 25u << 20);
  void average(const std::vector<torch::Tensor>& parameters);

 private:
  ProcessGroup& group_;
  size_t bucket_bytes_;
};

/// Copies rank 0's parameters and buffers into every process's model state (start of a step, or
/// the BatchNorm running statistics before a forward, as DDP's broadcast_buffers does).
void broadcast_tensors(ProcessGroup& group, const std::vector<torch::Tensor>& tensors);

}  // namespace cseg::distributed
