// GPU GEMM through cuBLAS: row-major C = alpha op(A) op(B) + beta C as the column-major C^T = op(B)^T op(A)^T.
#include "core/check.h"
#include "core/cuda/cuda_context.h"
#include "core/cuda/kernels.h"

namespace rt::gpu {

// Math mode: TF32 tensor cores with fp32 accumulation (CUBLAS_COMPUTE_32F_FAST_TF32): inputs lose their lowest 13
// mantissa bits inside the product, the sums and C stay fp32 (docs/gpu.md). beta = 0 does not read C.
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  auto i32 = [](int64_t v, const char* what) {
    RT_CHECK(v <= INT32_MAX, std::string("gemm ") + what + " = " + std::to_string(v) + " exceeds cuBLAS's int range");
    return static_cast<int>(v);
  };
  RT_CHECK_CUBLAS(cublasGemmEx(cublas_handle(), trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                               i32(N, "N"), i32(M, "M"), i32(K, "K"), &alpha, B, CUDA_R_32F, i32(ldb, "ldb"), A,
                               CUDA_R_32F, i32(lda, "lda"), &beta, C, CUDA_R_32F, i32(ldc, "ldc"),
                               CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT));
}

}  // namespace rt::gpu
