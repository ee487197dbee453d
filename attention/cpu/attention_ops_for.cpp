// Attention kernel table lookup for a CPU-only build (CMake compiles attention/cuda/attention_ops_for.cpp instead
// where CUDA is found).
#include "attention/attention_ops.h"
#include "core/check.h"

namespace rt {

const AttentionOps& attention_ops_for(Device device) {
  RT_CHECK(device == Device::cpu, "CUDA attention kernels requested from a build without CUDA");
  return attention_cpu_ops();
}

}  // namespace rt
