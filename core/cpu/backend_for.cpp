// Backend lookup for a CPU-only build (CMake compiles core/cuda/backend_for.cpp instead where CUDA is found).
#include "core/backend.h"
#include "core/check.h"

namespace rt {

std::string device_unavailable_reason(Device device) {
  if (device == Device::cuda)
    return "this ringtrain was built without CUDA (configure with -DRINGTRAIN_CUDA=ON on a machine with the CUDA "
           "toolkit)";
  return "";
}

int device_count(Device device) { return device == Device::cpu ? 1 : 0; }

Backend& backend_for(Device device) {
  if (device == Device::cuda) throw UserError("the cuda backend was requested but " + device_unavailable_reason(device));
  return cpu_backend();
}

}  // namespace rt
