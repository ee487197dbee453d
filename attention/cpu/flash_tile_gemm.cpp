// Tile GEMMs for flash attention without ISA-specific code: plain `omp simd` loops, and oneDNN sgemm.
#include "attention/cpu/flash_tiles.h"
#include "core/cpu/kernels.h"

namespace rt::flash {

// Y (M,N) [+]= A (M,K) B (K,N), one output row at a time (the compiler vectorises along N).
void TileGemmPortable::run(int64_t M, int64_t N, int64_t K, const float* a, int64_t a_rs, int64_t a_ts, const float* b,
                           int64_t ldb, bool accumulate, float* y, int64_t ldy) {
  for (int64_t r = 0; r < M; ++r) {
    float* yr = y + r * ldy;
    if (!accumulate) {
#pragma omp simd
      for (int64_t n = 0; n < N; ++n) yr[n] = 0.f;
    }
    const float* ar = a + r * a_rs;
    for (int64_t t = 0; t < K; ++t) {
      const float at = ar[t * a_ts];
      const float* bt = b + t * ldb;
#pragma omp simd
      for (int64_t n = 0; n < N; ++n) yr[n] += at * bt[n];
    }
  }
}

// The same through oneDNN: A row-major (a_ts == 1) is op 'N' with lda = a_rs, else op 'T' with lda = a_ts.
void TileGemmOneDnn::run(int64_t M, int64_t N, int64_t K, const float* a, int64_t a_rs, int64_t a_ts, const float* b,
                         int64_t ldb, bool accumulate, float* y, int64_t ldy) {
  if (M == 0 || N == 0) return;
  const bool trans_a = a_ts != 1;
  RT_CHECK(!trans_a || a_rs == 1, "tile GEMM: A must be row- or column-major");
  cpu::gemm(trans_a, false, M, N, K, 1.f, a, trans_a ? a_ts : a_rs, b, ldb, accumulate ? 1.f : 0.f, y, ldy);
}

}  // namespace rt::flash
