// Backend lookup for a build with the GPU path: the CPU backend, or the CUDA one where a GPU is visible.
#include "core/backend.h"
#include "core/check.h"
#include "core/cuda/cuda_context.h"

namespace rt {

Backend& cuda_backend();  // core/cuda/cuda_backend.cpp

std::string device_unavailable_reason(Device device) {
  std::string why;
  if (device == Device::cuda && cuda_device_count(&why) == 0) return why;
  return "";
}

int device_count(Device device) { return device == Device::cpu ? 1 : cuda_device_count(); }

Backend& backend_for(Device device) {
  if (device == Device::cpu) return cpu_backend();
  const std::string why = device_unavailable_reason(device);
  if (!why.empty()) throw UserError("the cuda backend was requested but " + why);
  return cuda_backend();
}

}  // namespace rt
