// AVX-512 tile GEMM for flash attention: register-blocked microkernels (R rows x NV*16 columns of Y in zmm
// registers, K streamed). Builds without AVX-512 (no __AVX512F__) get the portable kernel under the same name.
#include "attention/cpu/flash_tiles.h"

#if defined(__AVX512F__)
#include <immintrin.h>

namespace rt::flash {
namespace {

// Y (R, 16*NV) [+]= A (R, K) B (K, 16*NV). kTransA: A(r,t) = a[r + t*lda] (A stored transposed, the R values
// of one t are adjacent), else A(r,t) = a[r*lda + t]. R*NV accumulators + NV B vectors + 1 broadcast <= 32 zmm.
template <int R, int NV, bool kTransA>
inline void micro(int64_t K, const float* a, int64_t lda, const float* b, int64_t ldb, bool accumulate, float* y,
                  int64_t ldy) {
  __m512 acc[R][NV];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int c = 0; c < NV; ++c) acc[r][c] = accumulate ? _mm512_loadu_ps(y + r * ldy + 16 * c) : _mm512_setzero_ps();
  for (int64_t t = 0; t < K; ++t) {
    const float* bt = b + t * ldb;
    __m512 bv[NV];
#pragma GCC unroll 8
    for (int c = 0; c < NV; ++c) bv[c] = _mm512_loadu_ps(bt + 16 * c);
    const float* at = kTransA ? a + t * lda : a + t;
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m512 av = _mm512_set1_ps(kTransA ? at[r] : at[r * lda]);
#pragma GCC unroll 8
      for (int c = 0; c < NV; ++c) acc[r][c] = _mm512_fmadd_ps(av, bv[c], acc[r][c]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int c = 0; c < NV; ++c) _mm512_storeu_ps(y + r * ldy + 16 * c, acc[r][c]);
}

// Row blocks per column count: as many rows as keep ~24 accumulators live.
template <int NV>
constexpr int kRows = NV <= 2 ? 12 : 24 / NV;

// rem (<= R) rows.
template <int R, int NV, bool kTransA>
inline void micro_tail(int rem, int64_t K, const float* a, int64_t lda, const float* b, int64_t ldb, bool accumulate,
                       float* y, int64_t ldy) {
  if constexpr (R >= 1) {
    if (rem == R) return micro<R, NV, kTransA>(K, a, lda, b, ldb, accumulate, y, ldy);
    micro_tail<R - 1, NV, kTransA>(rem, K, a, lda, b, ldb, accumulate, y, ldy);
  }
}

// Y (M, 16*NV) [+]= A (M, K) B (K, 16*NV), all rows: blocks of R rows; a remainder of R < rem < 2R rows is split
// in two near-equal blocks (128 rows with R = 6: 20 x 6 + 4 + 4, not 21 x 6 + 2 with 8 idle accumulators).
template <int NV, bool kTransA>
void panel(int64_t M, int64_t K, const float* a, int64_t lda, const float* b, int64_t ldb, bool accumulate, float* y,
           int64_t ldy) {
  constexpr int R = kRows<NV>;
  auto block = [&](int64_t r0, int rows) {
    micro_tail<R, NV, kTransA>(rows, K, kTransA ? a + r0 : a + r0 * lda, lda, b, ldb, accumulate, y + r0 * ldy, ldy);
  };
  int64_t r0 = 0;
  for (; M - r0 >= 2 * R; r0 += R)
    micro<R, NV, kTransA>(K, kTransA ? a + r0 : a + r0 * lda, lda, b, ldb, accumulate, y + r0 * ldy, ldy);
  const int rem = static_cast<int>(M - r0);
  if (rem > R) {
    block(r0, (rem + 1) / 2);
    block(r0 + (rem + 1) / 2, rem / 2);
  } else if (rem > 0) {
    block(r0, rem);
  }
}

// Y (M, N16) over column panels of 64, then one of 48/32/16.
template <bool kTransA>
void run_panels(int64_t M, int64_t N16, int64_t K, const float* a, int64_t lda, const float* b, int64_t ldb,
                bool accumulate, float* y, int64_t ldy) {
  int64_t n0 = 0;
  for (; n0 + 64 <= N16; n0 += 64) panel<4, kTransA>(M, K, a, lda, b + n0, ldb, accumulate, y + n0, ldy);
  switch ((N16 - n0) / 16) {
    case 3:
      panel<3, kTransA>(M, K, a, lda, b + n0, ldb, accumulate, y + n0, ldy);
      break;
    case 2:
      panel<2, kTransA>(M, K, a, lda, b + n0, ldb, accumulate, y + n0, ldy);
      break;
    case 1:
      panel<1, kTransA>(M, K, a, lda, b + n0, ldb, accumulate, y + n0, ldy);
      break;
    default:
      break;
  }
}

}  // namespace

void TileGemmAvx512::run(int64_t M, int64_t N, int64_t K, const float* a, int64_t a_rs, int64_t a_ts, const float* b,
                         int64_t ldb, bool accumulate, float* y, int64_t ldy) {
  const int64_t N16 = N / 16 * 16;
  if (a_ts == 1)
    run_panels<false>(M, N16, K, a, a_rs, b, ldb, accumulate, y, ldy);
  else {
    RT_CHECK(a_rs == 1, "tile GEMM: A must be row- or column-major");
    run_panels<true>(M, N16, K, a, a_ts, b, ldb, accumulate, y, ldy);
  }
  if (N16 < N) TileGemmPortable::run(M, N - N16, K, a, a_rs, a_ts, b + N16, ldb, accumulate, y + N16, ldy);
}

bool TileGemmAvx512::compiled() { return true; }

}  // namespace rt::flash

#else  // no AVX-512 in this build: the portable kernel

namespace rt::flash {

void TileGemmAvx512::run(int64_t M, int64_t N, int64_t K, const float* a, int64_t a_rs, int64_t a_ts, const float* b,
                         int64_t ldb, bool accumulate, float* y, int64_t ldy) {
  TileGemmPortable::run(M, N, K, a, a_rs, a_ts, b, ldb, accumulate, y, ldy);
}

bool TileGemmAvx512::compiled() { return false; }

}  // namespace rt::flash

#endif
