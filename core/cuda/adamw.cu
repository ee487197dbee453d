// AdamW with decoupled weight decay and bias correction on the GPU, one fused pass over a parameter.
#include "core/check.h"
#include "core/cuda/block_reduce.cuh"
#include "core/cuda/cuda_context.h"
#include "core/cuda/kernels.h"
#include "core/cuda/launch.cuh"

namespace rt::gpu {
namespace {

__global__ void adamw_kernel(float* param, const float* grad, float* m, float* v, int64_t n, float beta1, float beta2,
                             float eps, float grad_scale, float step_size, float inv_sqrt_bc2, float decay) {
  RT_GRID_STRIDE(i, n) {
    const float g = grad[i] * grad_scale;
    const float mi = beta1 * m[i] + (1.0f - beta1) * g;
    const float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    param[i] = param[i] * decay - step_size * mi / (sqrtf(vi) * inv_sqrt_bc2 + eps);
  }
}

}  // namespace

void adamw_update(float* param, const float* grad, float* m, float* v, int64_t n, const AdamWStep& s,
                  cudaStream_t stream) {
  if (n == 0) return;
  const AdamWStep::Scalars k = s.scalars();  // as on the CPU
  RT_LAUNCH(adamw_kernel, blocks_for(n, 256), 256, 0, stream)(param, grad, m, v, n, s.beta1, s.beta2, s.eps, s.grad_scale,
                                                        k.step_size, k.inv_sqrt_bc2, k.decay);
  RT_CHECK_CUDA(cudaGetLastError());
}

}  // namespace rt::gpu
