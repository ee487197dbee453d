// Elementwise CUDA kernels of the Backend: fill, add, axpy, scale, copy_columns (grid-stride loops).
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

// Element i of the rows x width block: row i / width, column i % width.
__global__ void copy_columns_kernel(const float* src, int64_t ls, float* dst, int64_t ld, int64_t width, int64_t n,
                                    bool add) {
  RT_GRID_STRIDE(i, n) {
    const int64_t r = i / width, j = i % width;
    const float x = src[r * ls + j];
    float* y = dst + r * ld + j;
    *y = add ? *y + x : x;
  }
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

void copy_columns(const float* src, int64_t ls, float* dst, int64_t ld, int64_t rows, int64_t width, bool add,
                  cudaStream_t stream) {
  const int64_t n = rows * width;
  if (n == 0) return;
  RT_LAUNCH(copy_columns_kernel, blocks_for(n, kThreads), kThreads, 0, stream)(src, ls, dst, ld, width, n, add);
  RT_CHECK_CUDA(cudaGetLastError());
}

void scale(float* x, float s, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  RT_LAUNCH(scale_kernel, blocks_for(n, kThreads), kThreads, 0, stream)(x, s, n);
  RT_CHECK_CUDA(cudaGetLastError());
}

}  // namespace rt::gpu
