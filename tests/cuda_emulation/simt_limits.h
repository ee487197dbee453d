// Limits the SIMT emulator enforces: shared memory as on sm_80 (the smallest architecture we compile for), device
// ranges.
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

// Fails unless [p, p + bytes) lies inside one live device allocation (simt_runtime.cpp).
void check_device_range(const void* p, size_t bytes, const char* what);

}  // namespace simt
