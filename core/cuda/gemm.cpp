// GPU GEMM through cuBLAS: row-major C = alpha op(A) op(B) + beta C as the column-major C^T = op(B)^T op(A)^T.
#include <algorithm>
#include <string>

#include "core/check.h"
#include "core/cuda/cuda_context.h"
#include "core/cuda/kernels.h"

namespace rt::gpu {
namespace {

int i32(int64_t v, const char* what) {
  RT_CHECK(v <= INT32_MAX, std::string("gemm ") + what + " = " + std::to_string(v) + " exceeds cuBLAS's int range");
  return static_cast<int>(v);
}

}  // namespace

// Math mode: TF32 tensor cores with fp32 accumulation (CUBLAS_COMPUTE_32F_FAST_TF32): inputs lose their lowest 13
// mantissa bits inside the product, the sums and C stay fp32 (docs/gpu.md). beta = 0 does not read C.
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  RT_CHECK_CUBLAS(cublasGemmEx(cublas_handle(), trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                               i32(N, "N"), i32(M, "M"), i32(K, "K"), &alpha, B, CUDA_R_32F, i32(ldb, "ldb"), A,
                               CUDA_R_32F, i32(lda, "lda"), &beta, C, CUDA_R_32F, i32(ldc, "ldc"),
                               CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT));
}

// bf16: A and B converted into scratch on the compute stream (packed: ld = their row length), then bf16 tensor cores
// with fp32 accumulation. The scratch is freed in stream order after the GEMM.
void gemm_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
               const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  const int64_t a_rows = trans_a ? K : M, a_cols = trans_a ? M : K, b_rows = trans_b ? N : K, b_cols = trans_b ? K : N;
  cudaStream_t stream = cuda_stream();
  auto* a = static_cast<__nv_bfloat16*>(cuda_scratch_alloc(sizeof(__nv_bfloat16) * (a_rows * a_cols + 1), stream));
  auto* b = static_cast<__nv_bfloat16*>(cuda_scratch_alloc(sizeof(__nv_bfloat16) * (b_rows * b_cols + 1), stream));
  to_bf16(A, a_rows, a_cols, lda, a, stream);
  to_bf16(B, b_rows, b_cols, ldb, b, stream);
  RT_CHECK_CUBLAS(cublasGemmEx(cublas_handle(), trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                               i32(N, "N"), i32(M, "M"), i32(K, "K"), &alpha, b, CUDA_R_16BF,
                               i32(std::max<int64_t>(b_cols, 1), "ldb"), a, CUDA_R_16BF,
                               i32(std::max<int64_t>(a_cols, 1), "lda"), &beta, C, CUDA_R_32F, i32(ldc, "ldc"),
                               CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  cuda_scratch_free(a, stream);
  cuda_scratch_free(b, stream);
}

}  // namespace rt::gpu
