#include "cseg/core/device.h"

#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <torch/cuda.h>

#include <regex>

#include "cseg/core/error.h"

namespace cseg::core {

c10::Device parse_device(const std::string& name) {
  if (name == "cpu") return c10::Device(c10::kCPU);
  std::smatch m;
  static const std::regex cuda("cuda(?::([0-9]+))?");
  CSEG_CHECK(std::regex_match(name, m, cuda), "device: '{}' is not a device (expected cpu, cuda or cuda:N)", name);
  const int index = m[1].matched ? std::stoi(m[1].str()) : 0;
  CSEG_CHECK(torch::cuda::is_available(),
             "device: '{}' asks for a GPU, but this LibTorch has no CUDA support or "
             "sees no GPU (Debian's libtorch is CPU-only; use device: cpu)",
             name);
  CSEG_CHECK(index < int(torch::cuda::device_count()), "device: '{}' but only {} GPU(s) are visible", name,
             torch::cuda::device_count());
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
}

void make_current(const c10::Device& device) {
  if (!device.is_cuda()) return;
  // The process's current CUDA device: where NCCL's barriers and any kernel without an explicit
  // device run (torch.cuda.set_device).
  c10::impl::getDeviceGuardImpl(device.type())->setDevice(device);
}

}  // namespace cseg::core
