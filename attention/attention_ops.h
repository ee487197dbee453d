// The attention kernels of one device as a table, for code written once over CPU and CUDA (local, ring, KV cache).
#pragma once
#include <cstdint>

#include "attention/attention_kernels.h"
#include "core/tensor.h"

namespace rt {

// Every pointer is in the device's memory; layouts as in attention/attention_kernels.h. CUDA entries run on the
// compute stream (core/cuda/cuda_context.h) and return before the GPU has finished.
struct AttentionOps {
  // o (Tq,Hq,D), lse (Hq,Tq) of one block pair.
  void (*forward)(const AttentionProblem& p, const float* q, const float* k, const float* v, float* o, float* lse);
  // delta (Hq,Tq) = rowsum over D of dout * o.
  void (*delta)(const AttentionProblem& p, const float* o, const float* dout, float* delta);
  // dq (Tq,Hq,D), dk, dv (Tk,Hk,D) += the block pair's gradients, from the global lse and delta.
  void (*backward)(const AttentionProblem& p, const float* q, const float* k, const float* v, const float* dout,
                   const float* lse, const float* delta, float* dq, float* dk, float* dv);
  // Merges a block result (ob (n,H,D), lb (H,n)) into the running (o (T,H,D), lse (H,T)) at local rows [row, row+n):
  // O' = O - sigmoid(Lb - L) (O - Ob), L' = L - logsigmoid(L - Lb), in fp32; where L = -inf, the block is copied.
  void (*merge)(const float* ob, const float* lb, int64_t n, int64_t row, int64_t T, int64_t H, int64_t D, float* o,
                float* lse);
  // Copies columns [row, row+n) of a (H,T) array into a contiguous (H,n) one.
  void (*gather_columns)(const float* src, int64_t H, int64_t T, int64_t row, int64_t n, float* dst);
  // forward's contract for a few query rows against a long key cache (decoding): on the CPU split over key blocks
  // across threads (attention_decode); on CUDA the flash forward (its blocks already cover the heads).
  void (*decode)(const AttentionProblem& p, const float* q, const float* k, const float* v, float* o, float* lse);
};

// The table CMake built for `device` (the CPU one always exists; asking a CPU-only build for CUDA is fatal).
const AttentionOps& attention_ops_for(Device device);
const AttentionOps& attention_cpu_ops();

}  // namespace rt
