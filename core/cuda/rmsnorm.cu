// RMSNorm forward and backward over the last dim on the GPU: a warp per row; dw by deterministic two-pass sums.
#include <algorithm>

#include "core/check.h"
#include "core/cuda/block_reduce.cuh"
#include "core/cuda/cuda_context.h"
#include "core/cuda/kernels.h"
#include "core/cuda/launch.cuh"

namespace rt::gpu {
namespace {

constexpr int kWarps = 8;  // rows per block of the row kernels

// x (N,C), w (C) -> y (N,C), rstd (N) = 1/sqrt(mean(x^2) + eps)
__global__ void rmsnorm_forward_kernel(const float* x, const float* w, float eps, int64_t N, int64_t C, float* y,
                                       float* rstd) {
  const int64_t row = blockIdx.x * static_cast<int64_t>(kWarps) + threadIdx.x / 32;
  if (row >= N) return;
  const int lane = threadIdx.x % 32;
  const float* xr = x + row * C;
  float ss = 0.f;
  for (int64_t c = lane; c < C; c += 32) ss += xr[c] * xr[c];
  ss = warp_sum(ss);
  const float r = 1.0f / sqrtf(ss / static_cast<float>(C) + eps);
  if (lane == 0) rstd[row] = r;
  float* yr = y + row * C;
  for (int64_t c = lane; c < C; c += 32) yr[c] = xr[c] * r * w[c];
}

// dx = rstd * (w*dy - xhat * mean(w*dy*xhat)); dx may alias dy (each lane reads its entries before writing them).
__global__ void rmsnorm_dx_kernel(const float* dy, const float* x, const float* w, const float* rstd, int64_t N,
                                  int64_t C, float* dx) {
  const int64_t row = blockIdx.x * static_cast<int64_t>(kWarps) + threadIdx.x / 32;
  if (row >= N) return;
  const int lane = threadIdx.x % 32;
  const float* dyr = dy + row * C;
  const float* xr = x + row * C;
  const float r = rstd[row];
  float dot = 0.f;
  for (int64_t c = lane; c < C; c += 32) dot += dyr[c] * w[c] * xr[c] * r;
  const float mean = warp_sum(dot) / static_cast<float>(C);
  float* dxr = dx + row * C;
  for (int64_t c = lane; c < C; c += 32) dxr[c] = r * (dyr[c] * w[c] - xr[c] * r * mean);
}

// partial (chunks, C): column sums of dy * xhat over the chunk's rows. Block (32 columns, 8 row lanes).
__global__ void rmsnorm_dw_partial_kernel(const float* dy, const float* x, const float* rstd, int64_t N, int64_t C,
                                          int64_t rows_per_chunk, float* partial) {
  __shared__ float sums[8][33];
  const int64_t c = blockIdx.x * 32 + threadIdx.x;
  const int64_t r0 = blockIdx.y * rows_per_chunk, r1 = min(N, r0 + rows_per_chunk);
  float acc = 0.f;
  if (c < C)
    for (int64_t r = r0 + threadIdx.y; r < r1; r += 8) acc += dy[r * C + c] * x[r * C + c] * rstd[r];
  sums[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && c < C) {
    float t = 0.f;
    for (int k = 0; k < 8; ++k) t += sums[k][threadIdx.x];
    partial[blockIdx.y * C + c] = t;
  }
}

// dw (C) += the chunks' partial sums, in chunk order.
__global__ void rmsnorm_dw_sum_kernel(const float* partial, int64_t chunks, int64_t C, float* dw) {
  RT_GRID_STRIDE(c, C) {
    float t = 0.f;
    for (int64_t k = 0; k < chunks; ++k) t += partial[k * C + c];
    dw[c] += t;
  }
}

}  // namespace

void rmsnorm_forward(const float* x, const float* w, float eps, int64_t N, int64_t C, float* y, float* rstd,
                     cudaStream_t stream) {
  if (N == 0) return;
  RT_LAUNCH(rmsnorm_forward_kernel, static_cast<unsigned>((N + kWarps - 1) / kWarps), kWarps * 32, 0, stream)(x, w, eps, N, C, y, rstd);
  RT_CHECK_CUDA(cudaGetLastError());
}

void rmsnorm_backward(const float* dy, const float* x, const float* w, const float* rstd, int64_t N, int64_t C,
                      float* dx, float* dw, cudaStream_t stream) {
  if (N == 0) return;
  // dw first: dx may overwrite dy.
  const int64_t chunks = std::min<int64_t>((N + 31) / 32, 256), rows_per_chunk = (N + chunks - 1) / chunks;
  auto* partial = static_cast<float*>(cuda_scratch_alloc(static_cast<size_t>(chunks * C) * sizeof(float), stream));
  const dim3 grid(static_cast<unsigned>((C + 31) / 32), static_cast<unsigned>(chunks));
  RT_LAUNCH(rmsnorm_dw_partial_kernel, grid, dim3(32, 8), 0, stream)(dy, x, rstd, N, C, rows_per_chunk, partial);
  RT_CHECK_CUDA(cudaGetLastError());
  RT_LAUNCH(rmsnorm_dw_sum_kernel, blocks_for(C, 256), 256, 0, stream)(partial, chunks, C, dw);
  RT_CHECK_CUDA(cudaGetLastError());
  cuda_scratch_free(partial, stream);
  RT_LAUNCH(rmsnorm_dx_kernel, static_cast<unsigned>((N + kWarps - 1) / kWarps), kWarps * 32, 0, stream)(dy, x, w, rstd, N,
                                                                                                   C, dx);
  RT_CHECK_CUDA(cudaGetLastError());
}

}  // namespace rt::gpu
