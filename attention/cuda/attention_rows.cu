// Row-wise attention kernels on the GPU: delta = rowsum(dO * O), the ring's fp32 (O, LSE) merge, lse column gather.
#include "attention/cuda/attention_cuda.h"
#include "attention/cuda/flash_cuda.h"
#include "core/check.h"
#include "core/cuda/block_reduce.cuh"
#include "core/cuda/cuda_context.h"
#include "core/cuda/launch.cuh"

namespace rt {
namespace {

constexpr int kThreads = 256, kWarps = kThreads / 32;

// delta (H,T) = rowsum over D of dout * o; o, dout (T,H,D). A warp per (token, head).
__global__ void delta_kernel(const float* o, const float* dout, int64_t T, int64_t H, int64_t D, float* delta) {
  const int lane = threadIdx.x % 32;
  for (int64_t w = blockIdx.x * static_cast<int64_t>(kWarps) + threadIdx.x / 32; w < T * H;
       w += static_cast<int64_t>(gridDim.x) * kWarps) {
    const float* oi = o + w * D;
    const float* di = dout + w * D;
    float s = 0.f;
    for (int64_t d = lane; d < D; d += 32) s += oi[d] * di[d];
    s = gpu::warp_sum(s);
    if (lane == 0) delta[(w % H) * T + w / H] = s;
  }
}

__device__ float log_sigmoid(float x) { return x > 0.f ? -log1pf(expf(-x)) : x - log1pf(expf(x)); }

// O' = O - sigmoid(Lb - L) (O - Ob), L' = L - logsigmoid(L - Lb) at rows [row, row+n); the first block is copied.
// A warp per (head, row); ob (n,H,D), lb (H,n), o (T,H,D), lse (H,T).
__global__ void merge_kernel(const float* ob, const float* lb, int64_t n, int64_t row, int64_t T, int64_t H, int64_t D,
                             float* o, float* lse) {
  const int lane = threadIdx.x % 32;
  for (int64_t w = blockIdx.x * static_cast<int64_t>(kWarps) + threadIdx.x / 32; w < H * n;
       w += static_cast<int64_t>(gridDim.x) * kWarps) {
    const int64_t h = w / n, i = w % n;
    const float b = lb[h * n + i];
    float* l = lse + h * T + row + i;
    const float lv = *l;
    __syncwarp();  // every lane has read lse before lane 0 writes it
    if (b == -INFINITY) continue;  // this block is invisible to the row
    float* orow = o + ((row + i) * H + h) * D;
    const float* brow = ob + (i * H + h) * D;
    if (lv == -INFINITY) {
      for (int64_t d = lane; d < D; d += 32) orow[d] = brow[d];
      if (lane == 0) *l = b;
      continue;
    }
    const float s = 1.0f / (1.0f + expf(lv - b));  // sigmoid(b - l)
    for (int64_t d = lane; d < D; d += 32) orow[d] -= s * (orow[d] - brow[d]);
    if (lane == 0) *l = lv - log_sigmoid(lv - b);
  }
}

// dst (H,n) = columns [row, row+n) of src (H,T).
__global__ void gather_columns_kernel(const float* src, int64_t H, int64_t T, int64_t row, int64_t n, float* dst) {
  RT_GRID_STRIDE(e, H * n) dst[e] = src[(e / n) * T + row + e % n];
}

}  // namespace

void attention_cuda_delta(const AttentionProblem& p, const float* o, const float* dout, float* delta,
                          cudaStream_t stream) {
  if (p.Tq * p.Hq == 0) return;
  RT_LAUNCH(delta_kernel, gpu::blocks_for(p.Tq * p.Hq, kWarps), kThreads, 0, stream)(o, dout, p.Tq, p.Hq, p.D, delta);
  RT_CHECK_CUDA(cudaGetLastError());
}

void attention_cuda_merge(const float* ob, const float* lb, int64_t n, int64_t row, int64_t T, int64_t H, int64_t D,
                          float* o, float* lse, cudaStream_t stream) {
  if (n * H == 0) return;
  RT_LAUNCH(merge_kernel, gpu::blocks_for(n * H, kWarps), kThreads, 0, stream)(ob, lb, n, row, T, H, D, o, lse);
  RT_CHECK_CUDA(cudaGetLastError());
}

void attention_cuda_gather_columns(const float* src, int64_t H, int64_t T, int64_t row, int64_t n, float* dst,
                                   cudaStream_t stream) {
  if (n * H == 0) return;
  RT_LAUNCH(gather_columns_kernel, gpu::blocks_for(n * H, kThreads), kThreads, 0, stream)(src, H, T, row, n, dst);
  RT_CHECK_CUDA(cudaGetLastError());
}

}  // namespace rt
