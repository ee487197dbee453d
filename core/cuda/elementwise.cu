// Elementwise CUDA kernels of the Backend: fill, add, axpy, scale (grid-stride loops).
#include "core/check.h"
#include "core/cuda/block_reduce.cuh"
#include "core/cuda/cuda_context.h"
#include "core/cuda/kernels.h"
#include "core/cuda/launch.cuh"

namespace rt::gpu {
namespace {

constexpr int kThreads = 256;

template <class T>
__global__ void fill_kernel(T* x, int64_t n, T value) {
  RT_GRID_STRIDE(i, n) x[i] = value;
}

__global__ void add_kernel(const float* a, const float* b, float* out, int64_t n) {
  RT_GRID_STRIDE(i, n) out[i] = a[i] + b[i];
}

__global__ void axpy_kernel(float alpha, const float* x, float* y, int64_t n) {
  RT_GRID_STRIDE(i, n) y[i] += alpha * x[i];
}

__global__ void scale_kernel(float* x, float s, int64_t n) {
  RT_GRID_STRIDE(i, n) x[i] *= s;
}

}  // namespace

void fill_f32(float* x, int64_t n, float value, cudaStream_t stream) {
  if (n == 0) return;
  RT_LAUNCH(fill_kernel, blocks_for(n, kThreads), kThreads, 0, stream)(x, n, value);
  RT_CHECK_CUDA(cudaGetLastError());
}

void fill_i32(int32_t* x, int64_t n, int32_t value, cudaStream_t stream) {
  if (n == 0) return;
  RT_LAUNCH(fill_kernel, blocks_for(n, kThreads), kThreads, 0, stream)(x, n, value);
  RT_CHECK_CUDA(cudaGetLastError());
}

void add(const float* a, const float* b, float* out, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  RT_LAUNCH(add_kernel, blocks_for(n, kThreads), kThreads, 0, stream)(a, b, out, n);
  RT_CHECK_CUDA(cudaGetLastError());
}

void axpy(float alpha, const float* x, float* y, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  RT_LAUNCH(axpy_kernel, blocks_for(n, kThreads), kThreads, 0, stream)(alpha, x, y, n);
  RT_CHECK_CUDA(cudaGetLastError());
}

void scale(float* x, float s, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  RT_LAUNCH(scale_kernel, blocks_for(n, kThreads), kThreads, 0, stream)(x, s, n);
  RT_CHECK_CUDA(cudaGetLastError());
}

}  // namespace rt::gpu
