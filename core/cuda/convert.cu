// fp32 -> bf16 (nearest even) on the GPU, for the bf16 GEMM's inputs.
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

}  // namespace

void to_bf16(const float* x, int64_t rows, int64_t cols, int64_t ld, __nv_bfloat16* y, cudaStream_t stream) {
  const int64_t n = rows * cols;
  if (n == 0) return;
  RT_LAUNCH(to_bf16_kernel, blocks_for(n, 256), 256, 0, stream)(x, rows, cols, ld, y);
  RT_CHECK_CUDA(cudaGetLastError());
}

}  // namespace rt::gpu
