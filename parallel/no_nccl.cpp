// The GPU world in a build without NCCL (CMake compiles parallel/nccl_communicator.cpp instead where NCCL is found).
#include "core/check.h"
#include "parallel/communicator.h"

namespace rt {

std::unique_ptr<Communicator> nccl_world(double /*timeout_s*/) {
  throw UserError(
      "GPUs on several ranks communicate over NCCL, and this ringtrain was built without it (install NCCL next to the "
      "CUDA toolkit and reconfigure, or run train.device=cuda on one rank)");
}

}  // namespace rt
