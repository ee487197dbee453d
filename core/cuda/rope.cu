// Rotary position embedding on the GPU, rotate-half convention, at caller-given global positions (in place).
#include "core/check.h"
#include "core/cuda/block_reduce.cuh"
#include "core/cuda/cuda_context.h"
#include "core/cuda/kernels.h"
#include "core/cuda/launch.cuh"

namespace rt::gpu {
namespace {

// x (N,H,D); one thread per (token n, pair i < D/2), applied to every head. As on the CPU, the angle
// pos * rope_inv_freq(rope, i, D) and its cos/sin are computed in double: positions reach 10^5 and more, where a float
// angle is off by ~10^-2 rad; both are scaled by rope.attention_factor. sign = -1 rotates by -angle (the transpose:
// the backward).
__global__ void rope_kernel(float* x, const int32_t* pos, int64_t N, int64_t H, int64_t D, RopeParams rope,
                            float sign) {
  const int64_t half = D / 2;
  RT_GRID_STRIDE(t, N * half) {
    const int64_t n = t / half, i = t % half;
    const double a = static_cast<double>(pos[n]) * rope_inv_freq(rope, i, D);
    double s, c;
    sincos(a, &s, &c);
    const float cs = static_cast<float>(rope.attention_factor * c);
    const float sn = sign * static_cast<float>(rope.attention_factor * s);
    for (int64_t h = 0; h < H; ++h) {
      float* v = x + (n * H + h) * D;
      const float x0 = v[i], x1 = v[i + half];
      v[i] = x0 * cs - x1 * sn;
      v[i + half] = x1 * cs + x0 * sn;
    }
  }
}

}  // namespace

void rope_apply(float* x, const int32_t* pos, int64_t N, int64_t H, int64_t D, const RopeParams& rope, float sign,
                cudaStream_t stream) {
  if (N == 0 || D == 0) return;
  RT_LAUNCH(rope_kernel, blocks_for(N * (D / 2), 256), 256, 0, stream)(x, pos, N, H, D, rope, sign);
  RT_CHECK_CUDA(cudaGetLastError());
}

}  // namespace rt::gpu
