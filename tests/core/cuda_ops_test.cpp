// cuda_ops_test: the Backend op tests (ops_test.cpp) on the CUDA backend, held to the CPU backend's references and
// tolerances; each test skips, with the reason, where this build has no CUDA or no GPU is visible.
#include "core/tensor.h"

namespace rt {
Device ops_test_device() { return Device::cuda; }
}  // namespace rt
