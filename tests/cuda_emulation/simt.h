// CUDA C++ on the CPU, for tests: included first into each of the project's .cu files compiled by g++, it supplies the
// device built-ins (threadIdx, __syncthreads, __shfl_xor_sync, atomicAdd, shared memory, kernel launch) on a SIMT
// emulator that runs every thread of a block as a fiber and the blocks of a grid one after another.
//
// Semantics kept: a block's threads run concurrently between barriers, warp collectives (shuffles, ldmatrix, mma)
// exchange values through the 32 lanes at one instant as a warp instruction does, shared memory is one per block,
// launches on a stream run in order. Not kept: timing, registers, coalescing. Made adversarial: each warp runs as far
// as it can before the next starts (odd blocks in reverse warp order), fresh shared and device memory reads as NaN,
// and a cp.async destination reads as NaN from its issue to its wait_group, so a missing barrier or wait shows as a
// wrong result. Checked: barriers and collectives that cannot complete (deadlock), collectives after lanes of the warp
// exited, dynamic shared memory bounds and alignment of ldmatrix / cp.async, launches above sm_80's shared memory or
// above the limit cudaFuncSetAttribute raised, and (simt_runtime.cpp) device ranges of copies and cuBLAS calls. With
// the memcheck build (CMakeLists.txt) AddressSanitizer also checks every access of the kernels to device memory.
#pragma once
#if defined(__HOST_DEFINES_H__) && !defined(RT_SIMT_EMULATION)
#error "tests/cuda_emulation/simt.h must be included before any CUDA header"
#endif
#define RT_SIMT_EMULATION 1

// The CUDA headers keep these when they are already defined (crt/host_defines.h).
#define __host__
#define __device__
#define __global__
#define __shared__ static  // blocks run one at a time, so a function-local static is the block's shared memory
#define __launch_bounds__(...)

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>

#include "tests/cuda_emulation/simt_streams.h"

namespace simt {

// What one lane contributes to a warp collective.
struct Slot {
  uint32_t words[8];    // in: registers
  const void* pointer;  // in: an address
  uint32_t out[4];      // out: filled for every lane by the exchange's completion
};

struct ThreadPosition {
  uint3 thread, block;
  dim3 block_dim, grid_dim;
  int lane, warp;
};

const ThreadPosition& position();
void sync_block();
void sync_warp();
// Every live lane of the warp passes its slot; the last lane to arrive runs complete(slots) once (the warp's memory
// reads happen there, all at one instant, as a warp instruction's do); returns the 32 slots of this exchange (valid
// until the lane's exchange after next). A collective in a warp some of whose lanes have exited is an error.
const Slot* warp_exchange(const Slot& mine, void (*complete)(Slot* all) = nullptr);
unsigned char* dynamic_shared();
size_t dynamic_shared_bytes();
// Stops the test binary with the message (a kernel's contract was broken).
[[noreturn]] void fail(const char* what);
// Runs body on every thread of every block of the grid, blocks in order of blockIdx (x fastest).
void run_grid(dim3 grid, dim3 block, size_t shared_bytes, const std::function<void()>& body);

// kernel<<<grid, block, shared_bytes, stream>>>(args...): arguments are copied, as a launch copies them.
template <class Kernel>
struct Launcher {
  dim3 grid, block;
  size_t shared_bytes;
  cudaStream_t stream;
  Kernel kernel;
  template <class... Args>
  void operator()(Args... args) const {
    stream_ready(stream);
    run_grid(grid, block, shared_bytes, [&] { kernel(args...); });
  }
};
template <class Kernel>
Launcher<Kernel> launcher(dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream, Kernel kernel) {
  return {grid, block, shared_bytes, stream, kernel};
}

}  // namespace simt

#define threadIdx (::simt::position().thread)
#define blockIdx (::simt::position().block)
#define blockDim (::simt::position().block_dim)
#define gridDim (::simt::position().grid_dim)

// core/cuda/launch.cuh's two constructs that are not C++.
#define RT_LAUNCH(kernel, grid, block, shared_bytes, stream) \
  ::simt::launcher((grid), (block), (shared_bytes), (stream), [](auto... a) { kernel(a...); })
#define RT_DYNAMIC_SHARED(type, name) type* name = reinterpret_cast<type*>(::simt::dynamic_shared())

// cuda_runtime.h declares this overload for nvcc only.
template <class Kernel>
cudaError_t cudaFuncSetAttribute(Kernel* kernel, cudaFuncAttribute attr, int value) {
  return ::cudaFuncSetAttribute(reinterpret_cast<const void*>(kernel), attr, value);
}

inline void __syncthreads() { simt::sync_block(); }
inline void __syncwarp(unsigned = 0xffffffffu) { simt::sync_warp(); }

template <class T>
T __shfl_xor_sync(unsigned mask, T value, int lane_mask) {
  static_assert(sizeof(T) <= sizeof(simt::Slot::words));
  if (mask != 0xffffffffu) simt::fail("__shfl_xor_sync: only full-warp masks are emulated");
  simt::Slot mine{};
  std::memcpy(mine.words, &value, sizeof(T));
  const simt::Slot* all = simt::warp_exchange(mine);
  T out;
  std::memcpy(&out, all[(simt::position().lane ^ lane_mask) & 31].words, sizeof(T));
  return out;
}

// Fibers of one OS thread never interleave inside a statement, so a read-modify-write is atomic here.
inline float atomicAdd(float* address, float value) {
  const float old = *address;
  *address = old + value;
  return old;
}
inline double atomicAdd(double* address, double value) {
  const double old = *address;
  *address = old + value;
  return old;
}

// CUDA's integer min/max overloads used by device code.
inline int64_t min(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t max(int64_t a, int64_t b) { return a > b ? a : b; }
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
