// ops_test: the Backend op tests (ops_test.cpp) on the CPU backend.
#include "core/tensor.h"

namespace rt {
Device ops_test_device() { return Device::cpu; }
}  // namespace rt
