// Backend lookup for a CPU-only build: asking for CUDA says the build has no GPU path.
#include "core/backend.h"
#include "core/check.h"

namespace rt {

Backend& backend_for(Device device) {
  if (device == Device::cuda)
    throw UserError("backend 'cuda' was requested but this ringtrain was built without CUDA; valid: cpu");
  return cpu_backend();
}

}  // namespace rt
