// Shared-memory limits the SIMT emulator enforces, as an sm_80 GPU would (the smallest architecture we compile for).
#pragma once
#include <cstddef>

namespace simt {

constexpr size_t kDefaultDynamicShared = 48 * 1024;  // without cudaFuncSetAttribute
constexpr size_t kMaxDynamicShared = 166912;         // sm_80 opt-in maximum per block (163 KiB)

// Records cudaFuncSetAttribute(..., cudaFuncAttributeMaxDynamicSharedMemorySize, bytes).
void raise_dynamic_shared_limit(size_t bytes);
// Fails when a launch asks for more dynamic shared memory than the limit raised so far (or the default) allows.
void check_dynamic_shared_launch(size_t bytes);
// Fails unless [p, p + bytes) lies inside the running block's dynamic shared memory, 16-byte aligned.
void check_shared_range(const void* p, size_t bytes, const char* what);

}  // namespace simt
