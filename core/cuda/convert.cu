// fp32 <-> bf16 on the GPU (to bf16: nearest even): the bf16 GEMM's inputs, and bf16 storage (ring K/V blocks).
#include <cuda_bf16.h>

#include "core/check.h"
#include "core/cuda/block_reduce.cuh"
#include "core/cuda/cuda_context.h"
#include "core/cuda/kernels.h"
#include "core/cuda/launch.cuh"

namespace rt::gpu {
namespace {

// x (rows, cols) with leading dimension ld -> y (rows, cols) packed.
__global__ void to_bf16_kernel(const float* x, int64_t rows, int64_t cols, int64_t ld, __nv_bfloat16* y) {
  RT_GRID_STRIDE(i, rows * cols) { y[i] = __float2bfloat16_rn(x[(i / cols) * ld + i % cols]); }
}

__global__ void from_bf16_kernel(const __nv_bfloat16* x, int64_t n, float* y) {
  RT_GRID_STRIDE(i, n) { y[i] = __bfloat162float(x[i]); }
}

}  // namespace

void from_bf16(const __nv_bfloat16* x, int64_t n, float* y, cudaStream_t stream) {
  if (n == 0) return;
  RT_LAUNCH(from_bf16_kernel, blocks_for(n, 256), 256, 0, stream)(x, n, y);
  RT_CHECK_CUDA(cudaGetLastError());
}

void to_bf16(const float* x, int64_t rows, int64_t cols, int64_t ld, __nv_bfloat16* y, cudaStream_t stream) {
  const int64_t n = rows * cols;
  if (n == 0) return;
  RT_LAUNCH(to_bf16_kernel, blocks_for(n, 256), 256, 0, stream)(x, rows, cols, ld, y);
  RT_CHECK_CUDA(cudaGetLastError());
}

}  // namespace rt::gpu
