#pragma once
/// Where a model trains and predicts: the top-level `device:` key ("cpu", "cuda", "cuda:N").
#include <c10/core/Device.h>

#include <string>

namespace cseg::core {

/// The device `name` names. Throws cseg::Error naming the value when it is not cpu, cuda or
/// cuda:N, or names a GPU this process cannot use (Debian's LibTorch is built without CUDA; a
/// CUDA build sees no GPU, or fewer than N + 1).
c10::Device parse_device(const std::string& name);

/// Makes a CUDA `device` the process's current one (each process of a data-parallel run on its
/// own GPU, LOCAL_RANK); nothing for the CPU.
void make_current(const c10::Device& device);

}  // namespace cseg::core
