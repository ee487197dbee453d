// CUDA kernel launchers on raw device pointers, all on the given stream; the CUDA Backend calls these.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "core/backend.h"

namespace rt::gpu {

// Row-major C (M,N) = alpha * op(A) @ op(B) + beta * C through cuBLAS on the compute stream. Math: TF32 tensor cores
// (inputs rounded to TF32, 10-bit mantissa) with fp32 accumulation: CUBLAS_COMPUTE_32F_FAST_TF32.
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// The same with A and B rounded to bf16 (nearest even, into scratch) and CUBLAS_COMPUTE_32F: bf16 tensor cores,
// fp32 accumulation and C.
void gemm_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
               const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
// x (rows, cols), leading dimension ld -> y (rows, cols) packed, rounded to nearest even.
void to_bf16(const float* x, int64_t rows, int64_t cols, int64_t ld, __nv_bfloat16* y, cudaStream_t stream);
// y (n) = x (n) widened, exact.
void from_bf16(const __nv_bfloat16* x, int64_t n, float* y, cudaStream_t stream);

void fill_f32(float* x, int64_t n, float value, cudaStream_t stream);
void fill_i32(int32_t* x, int64_t n, int32_t value, cudaStream_t stream);
void add(const float* a, const float* b, float* out, int64_t n, cudaStream_t stream);  // out may alias a or b
void axpy(float alpha, const float* x, float* y, int64_t n, cudaStream_t stream);
// dst[r * ld + j] (+)= src[r * ls + j] for r < rows, j < width (Backend::copy_columns; pointers at the first column).
void copy_columns(const float* src, int64_t ls, float* dst, int64_t ld, int64_t rows, int64_t width, bool add,
                  cudaStream_t stream);
void scale(float* x, float s, int64_t n, cudaStream_t stream);

// x (N,C), w (C) -> y (N,C), rstd (N); backward: dx (N,C) (may alias dy), dw (C) +=, deterministic.
void rmsnorm_forward(const float* x, const float* w, float eps, int64_t N, int64_t C, float* y, float* rstd,
                     cudaStream_t stream);
void rmsnorm_backward(const float* dy, const float* x, const float* w, const float* rstd, int64_t N, int64_t C,
                      float* dx, float* dw, cudaStream_t stream);

// x (N,H,D) in place, rotate-half; sign -1 applies the transpose. Angles and their cos/sin in double, as on the CPU.
void rope_apply(float* x, const int32_t* pos, int64_t N, int64_t H, int64_t D, const RopeParams& rope, float sign,
                cudaStream_t stream);

void swiglu_forward(const float* gate, const float* up, int64_t n, float* out, cudaStream_t stream);
void swiglu_backward(const float* dout, const float* gate, const float* up, int64_t n, float* dgate, float* dup,
                     cudaStream_t stream);

// tokens (N), table (V,C) -> out (N,C); backward dtable (V,C) += by fp32 atomics (summation order not fixed).
void embedding_forward(const int32_t* tokens, const float* table, int64_t N, int64_t C, float* out,
                       cudaStream_t stream);
void embedding_backward(const int32_t* tokens, const float* dout, int64_t N, int64_t C, float* dtable,
                        cudaStream_t stream);

void cross_entropy_forward(const float* logits, const int32_t* labels, int64_t N, int64_t V, float* losses, float* lse,
                           float* hits, cudaStream_t stream);
void cross_entropy_backward(const float* logits, const int32_t* labels, const float* lse, int64_t N, int64_t V,
                            float scale, float* dlogits, cudaStream_t stream);

void adamw_update(float* param, const float* grad, float* m, float* v, int64_t n, const AdamWStep& s,
                  cudaStream_t stream);

// Sums in double with a fixed summation order (bit-identical on every rank for the same input); waits for the
// stream and returns the value on the host.
double sum(const float* x, int64_t n, cudaStream_t stream);
double sum_squares(const float* x, int64_t n, cudaStream_t stream);

}  // namespace rt::gpu
