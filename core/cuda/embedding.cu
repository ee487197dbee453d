// Token embedding lookup and its scatter-add backward on the GPU.
#include "core/check.h"
#include "core/cuda/block_reduce.cuh"
#include "core/cuda/cuda_context.h"
#include "core/cuda/kernels.h"
#include "core/cuda/launch.cuh"

namespace rt::gpu {
namespace {

// tokens (N), table (V,C) -> out (N,C). Tokens are validated by the data layer.
__global__ void embedding_forward_kernel(const int32_t* tokens, const float* table, int64_t N, int64_t C, float* out) {
  RT_GRID_STRIDE(e, N * C) out[e] = table[static_cast<int64_t>(tokens[e / C]) * C + e % C];
}

// dtable (V,C) += scatter of dout rows; repeated tokens meet in fp32 atomics (the order of their sum is not fixed).
__global__ void embedding_backward_kernel(const int32_t* tokens, const float* dout, int64_t N, int64_t C,
                                          float* dtable) {
  RT_GRID_STRIDE(e, N * C) atomicAdd(dtable + static_cast<int64_t>(tokens[e / C]) * C + e % C, dout[e]);
}

}  // namespace

void embedding_forward(const int32_t* tokens, const float* table, int64_t N, int64_t C, float* out,
                       cudaStream_t stream) {
  if (N * C == 0) return;
  RT_LAUNCH(embedding_forward_kernel, blocks_for(N * C, 256), 256, 0, stream)(tokens, table, N, C, out);
  RT_CHECK_CUDA(cudaGetLastError());
}

void embedding_backward(const int32_t* tokens, const float* dout, int64_t N, int64_t C, float* dtable,
                        cudaStream_t stream) {
  if (N * C == 0) return;
  RT_LAUNCH(embedding_backward_kernel, blocks_for(N * C, 256), 256, 0, stream)(tokens, dout, N, C, dtable);
  RT_CHECK_CUDA(cudaGetLastError());
}

}  // namespace rt::gpu
