// CPU GEMM through oneDNN's sgemm (AVX-512 JIT; see docs/gemm.md for why not OpenBLAS/BLIS/libxsmm).
#include <oneapi/dnnl/dnnl.h>

#include "core/check.h"
#include "core/cpu/kernels.h"

namespace rt::cpu {

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  dnnl_status_t st = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  RT_CHECK(st == dnnl_success, "dnnl_sgemm returned status " + std::to_string(static_cast<int>(st)));
}

}  // namespace rt::cpu
