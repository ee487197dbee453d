// SwiGLU activation on the GPU: out = silu(gate) * up, silu(g) = g * sigmoid(g), and its backward.
#include "core/check.h"
#include "core/cuda/block_reduce.cuh"
#include "core/cuda/cuda_context.h"
#include "core/cuda/kernels.h"
#include "core/cuda/launch.cuh"

namespace rt::gpu {
namespace {

__global__ void swiglu_forward_kernel(const float* gate, const float* up, int64_t n, float* out) {
  RT_GRID_STRIDE(i, n) {
    const float g = gate[i];
    out[i] = g / (1.0f + expf(-g)) * up[i];
  }
}

// d/dg silu(g) = s (1 + g (1 - s)), s = sigmoid(g); dgate, dup may alias gate, up (read before written).
__global__ void swiglu_backward_kernel(const float* dout, const float* gate, const float* up, int64_t n, float* dgate,
                                       float* dup) {
  RT_GRID_STRIDE(i, n) {
    const float g = gate[i], u = up[i], d = dout[i];
    const float s = 1.0f / (1.0f + expf(-g));
    dgate[i] = d * u * s * (1.0f + g * (1.0f - s));
    dup[i] = d * g * s;
  }
}

}  // namespace

void swiglu_forward(const float* gate, const float* up, int64_t n, float* out, cudaStream_t stream) {
  if (n == 0) return;
  RT_LAUNCH(swiglu_forward_kernel, blocks_for(n, 256), 256, 0, stream)(gate, up, n, out);
  RT_CHECK_CUDA(cudaGetLastError());
}

void swiglu_backward(const float* dout, const float* gate, const float* up, int64_t n, float* dgate, float* dup,
                     cudaStream_t stream) {
  if (n == 0) return;
  RT_LAUNCH(swiglu_backward_kernel, blocks_for(n, 256), 256, 0, stream)(dout, gate, up, n, dgate, dup);
  RT_CHECK_CUDA(cudaGetLastError());
}

}  // namespace rt::gpu
