// The SIMT emulator's shared-memory checks: launch sizes against sm_80's limits, ldmatrix / cp.async addresses.
#include "tests/cuda_emulation/simt_limits.h"

#include <atomic>
#include <cstdint>
#include <string>

#include "tests/cuda_emulation/simt.h"

namespace simt {
namespace {
std::atomic<size_t> raised_limit = kDefaultDynamicShared;
}  // namespace

void raise_dynamic_shared_limit(size_t bytes) {
  if (bytes > kMaxDynamicShared)
    fail(("cudaFuncSetAttribute asks for " + std::to_string(bytes) + " bytes of dynamic shared memory; sm_80 allows " +
          std::to_string(kMaxDynamicShared))
             .c_str());
  if (bytes > raised_limit) raised_limit = bytes;
}

void check_dynamic_shared_launch(size_t bytes) {
  if (bytes > raised_limit)
    fail(("a launch asks for " + std::to_string(bytes) +
          " bytes of dynamic shared memory but no cudaFuncSetAttribute "
          "raised the limit above " +
          std::to_string(raised_limit.load()))
             .c_str());
}

void check_shared_range(const void* p, size_t bytes, const char* what) {
  const auto a = reinterpret_cast<uintptr_t>(p), base = reinterpret_cast<uintptr_t>(dynamic_shared());
  if (a % 16 != 0) fail((std::string(what) + " is not 16-byte aligned").c_str());
  if (a < base || a + bytes > base + dynamic_shared_bytes())
    fail((std::string(what) + " lies outside the block's dynamic shared memory (offset " +
          std::to_string(static_cast<long long>(a - base)) + ", " + std::to_string(dynamic_shared_bytes()) + " bytes)")
             .c_str());
}

}  // namespace simt
