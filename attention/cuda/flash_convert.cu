// Staging for the CUDA flash kernels: fp32 (T,H,D) inputs -> bf16 (H,T,Dp) head-major buffers, zero-padded in D.
#include "attention/cuda/flash_cuda.h"
#include "core/check.h"
#include "core/cuda/block_reduce.cuh"
#include "core/cuda/cuda_context.h"
#include "core/cuda/launch.cuh"

namespace rt::flash_cuda {
namespace {

// One thread per 8 output elements (16 bytes) of y (H,T,Dp).
__global__ void to_bf16_heads_kernel(const float* x, int64_t T, int64_t H, int64_t D, int64_t Dp, __nv_bfloat16* y) {
  const int64_t chunks = Dp / 8;
  RT_GRID_STRIDE(c, H * T * chunks) {
    const int64_t d0 = (c % chunks) * 8, t = (c / chunks) % T, h = c / (chunks * T);
    const float* src = x + (t * H + h) * D;
    __align__(16) __nv_bfloat16 out[8];
#pragma unroll
    for (int e = 0; e < 8; ++e) out[e] = __float2bfloat16_rn(d0 + e < D ? src[d0 + e] : 0.f);
    *reinterpret_cast<uint4*>(y + (h * T + t) * Dp + d0) = *reinterpret_cast<const uint4*>(out);
  }
}

}  // namespace

void to_bf16_heads(const float* x, int64_t T, int64_t H, int64_t D, int64_t Dp, __nv_bfloat16* y,
                   cudaStream_t stream) {
  const int64_t n = H * T * (Dp / 8);
  if (n == 0) return;
  RT_LAUNCH(to_bf16_heads_kernel, gpu::blocks_for(n, 256), 256, 0, stream)(x, T, H, D, Dp, y);
  RT_CHECK_CUDA(cudaGetLastError());
}

Bf16Inputs::Bf16Inputs(const AttentionProblem& p, int count_q_like, int count_kv_like, cudaStream_t stream)
    : p_(p), dp_(padded_head_dim(p.D)), count_q_(count_q_like), stream_(stream) {
  const int64_t elems = (count_q_like * p.Hq * p.Tq + count_kv_like * p.Hk * p.Tk) * dp_;
  base_ = static_cast<__nv_bfloat16*>(cuda_scratch_alloc(static_cast<size_t>(elems) * sizeof(__nv_bfloat16), stream));
}

Bf16Inputs::~Bf16Inputs() { cuda_scratch_free(base_, stream_); }

__nv_bfloat16* Bf16Inputs::q_like(int i) const { return base_ + i * p_.Hq * p_.Tq * dp_; }
__nv_bfloat16* Bf16Inputs::kv_like(int i) const { return base_ + (count_q_ * p_.Hq * p_.Tq + i * p_.Hk * p_.Tk) * dp_; }

__nv_bfloat16* Bf16Inputs::q_like_from(int i, const float* x) const {
  to_bf16_heads(x, p_.Tq, p_.Hq, p_.D, dp_, q_like(i), stream_);
  return q_like(i);
}
__nv_bfloat16* Bf16Inputs::kv_like_from(int i, const float* x) const {
  to_bf16_heads(x, p_.Tk, p_.Hk, p_.D, dp_, kv_like(i), stream_);
  return kv_like(i);
}

}  // namespace rt::flash_cuda
