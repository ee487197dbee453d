// Internal interface between the CUDA flash-attention files: bf16 staging buffers and the kernel launchers.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "attention/attention_kernels.h"
#include "attention/cuda/attention_cuda.h"
#include "core/check.h"

namespace rt::flash_cuda {

inline void check_problem(const AttentionProblem& p) {
  RT_CHECK(p.Hq > 0 && p.Hk > 0 && p.Hq % p.Hk == 0,
           "CUDA flash attention heads Hq=" + std::to_string(p.Hq) + " Hk=" + std::to_string(p.Hk));
  RT_CHECK(p.D > 0 && p.D % 2 == 0 && p.D <= kCudaFlashMaxHeadDim,
           "CUDA flash attention head dim " + std::to_string(p.D) + " (even, at most 128)");
  RT_CHECK(p.Tq >= 0 && p.Tk >= 0 && p.scale > 0, "CUDA flash attention problem sizes");
}

// Head dims the kernels are compiled for; a problem's D (even, <= 128) is zero-padded up to the next one.
inline int64_t padded_head_dim(int64_t D) { return D <= 32 ? 32 : D <= 64 ? 64 : 128; }

// x (T,H,D) fp32, rows of H*D -> y (H,T,Dp) bf16 (round to nearest even), columns [D, Dp) zero: each head's rows
// contiguous and 16-byte aligned for cp.async.
void to_bf16_heads(const float* x, int64_t T, int64_t H, int64_t D, int64_t Dp, __nv_bfloat16* y,
                   cudaStream_t stream);

// The bf16 copies of one call's inputs, in one stream-ordered allocation freed by the destructor (after the work
// queued on the stream before it).
class Bf16Inputs {
 public:
  Bf16Inputs(const AttentionProblem& p, int count_q_like, int count_kv_like, cudaStream_t stream);
  ~Bf16Inputs();
  Bf16Inputs(const Bf16Inputs&) = delete;
  Bf16Inputs& operator=(const Bf16Inputs&) = delete;
  // The i-th (Hq,Tq,Dp) buffer, then the (Hk,Tk,Dp) ones, each filled from a (T,H,D) fp32 array.
  __nv_bfloat16* q_like(int i) const;
  __nv_bfloat16* kv_like(int i) const;
  __nv_bfloat16* q_like_from(int i, const float* x) const;
  __nv_bfloat16* kv_like_from(int i, const float* x) const;
  int64_t dp() const { return dp_; }

 private:
  AttentionProblem p_;
  int64_t dp_;
  int count_q_;
  cudaStream_t stream_;
  __nv_bfloat16* base_ = nullptr;
};

// Kernels on the staged inputs; o, lse, dq, dk, dv, lse, delta in the layouts of attention_kernels.h.
void forward_launch(const AttentionProblem& p, int64_t Dp, const __nv_bfloat16* q, const __nv_bfloat16* k,
                    const __nv_bfloat16* v, float* o, float* lse, cudaStream_t stream);
void backward_launch(const AttentionProblem& p, int64_t Dp, const __nv_bfloat16* q, const __nv_bfloat16* k,
                     const __nv_bfloat16* v, const __nv_bfloat16* dout, const float* lse, const float* delta, float* dq,
                     float* dk, float* dv, cudaStream_t stream);

}  // namespace rt::flash_cuda
