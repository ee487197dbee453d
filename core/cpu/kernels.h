// CPU kernels on raw fp32 pointers, OpenMP-parallel; the CPU Backend and the attention code call these.
#pragma once
#include <cstdint>
#include <string>

#include "core/backend.h"

namespace rt::cpu {

// Row-major C (M,N) = alpha * op(A) @ op(B) + beta * C, with leading dimensions (oneDNN sgemm).
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// The same with A and B rounded to bf16 (nearest even) and fp32 accumulation (oneDNN's bf16 matmul; where oneDNN has
// none for this CPU, sgemm on the rounded values, which computes the same products).
void gemm_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
               const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
// oneDNN's name for the bf16 matmul it runs here ("brg:avx512_core_amx", ...), "" when it has none (the fallback).
std::string gemm_bf16_implementation();

void rmsnorm_forward(const float* x, const float* w, float eps, int64_t N, int64_t C, float* y, float* rstd);
void rmsnorm_backward(const float* dy, const float* x, const float* w, const float* rstd, int64_t N, int64_t C,
                      float* dx, float* dw);

// x (N,H,D) in place; sign +1 rotates forward, -1 applies the transpose (backward).
void rope_apply(float* x, const int32_t* pos, int64_t N, int64_t H, int64_t D, const RopeParams& rope, float sign);

void swiglu_forward(const float* gate, const float* up, int64_t n, float* out);
void swiglu_backward(const float* dout, const float* gate, const float* up, int64_t n, float* dgate, float* dup);

void embedding_forward(const int32_t* tokens, const float* table, int64_t N, int64_t C, float* out);
void embedding_backward(const int32_t* tokens, const float* dout, int64_t N, int64_t V, int64_t C, float* dtable);

void cross_entropy_forward(const float* logits, const int32_t* labels, int64_t N, int64_t V, float* losses, float* lse,
                           float* hits);
void cross_entropy_backward(const float* logits, const int32_t* labels, const float* lse, int64_t N, int64_t V,
                            float scale, float* dlogits);

void adamw_update(float* param, const float* grad, float* m, float* v, int64_t n, const AdamWStep& s);

double sum(const float* x, int64_t n);
double sum_squares(const float* x, int64_t n);

}  // namespace rt::cpu
