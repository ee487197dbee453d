// CUDA flash attention: the ring-step API of attention/attention_kernels.h on device pointers and a stream.
//
// Precision (docs/gpu.md): q, k, v and dout are rounded to bf16 (a staging pass into head-major buffers); S = Q K^T,
// P V, dP = dO V^T, dV = P^T dO, dK = dS^T Q and dQ = dS K run on bf16 tensor cores (mma.sync m16n8k16) with fp32
// accumulation, P and dS rounded to bf16 as they enter a product; the softmax, its running max and sum, lse and
// delta are fp32, and o, lse, dq, dk, dv are fp32 in global memory. D must be even and at most 128.
// Same layouts, masking (causal with q_offset/k_offset), GQA (query head h reads key/value head h / (Hq/Hk)) and
// accumulation (dq, dk, dv +=) as the CPU kernels. Causal tiles above the diagonal are skipped.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "attention/attention_kernels.h"

namespace rt {

constexpr int64_t kCudaFlashMaxHeadDim = 128;

// o (Tq,Hq,D), lse (Hq,Tq); rows that see no key get o = 0, lse = -inf. FlashAttention-2 forward: a CTA of 8 warps
// per (query head, 128 query rows), K/V tiles of 64 keys double-buffered in shared memory by cp.async, online softmax
// in registers.
void attention_cuda_flash_forward(const AttentionProblem& p, const float* q, const float* k, const float* v, float* o,
                                  float* lse, cudaStream_t stream);
// delta (Hq,Tq) = rowsum over D of dout * o (fp32).
void attention_cuda_delta(const AttentionProblem& p, const float* o, const float* dout, float* delta,
                          cudaStream_t stream);
// FlashAttention-2 backward: a CTA of 8 warps per (key/value head, 128 keys) keeps that tile's dK, dV in registers
// over every query head of its group and every query tile that sees it; dQ goes to dq by fp32 atomics.
void attention_cuda_flash_backward(const AttentionProblem& p, const float* q, const float* k, const float* v,
                                   const float* dout, const float* lse, const float* delta, float* dq, float* dk,
                                   float* dv, cudaStream_t stream);
// The ring's fp32 merge and lse/delta column gather (attention/attention_ops.h), on the GPU.
void attention_cuda_merge(const float* ob, const float* lb, int64_t n, int64_t row, int64_t T, int64_t H, int64_t D,
                          float* o, float* lse, cudaStream_t stream);
void attention_cuda_gather_columns(const float* src, int64_t H, int64_t T, int64_t row, int64_t n, float* dst,
                                   cudaStream_t stream);

}  // namespace rt
