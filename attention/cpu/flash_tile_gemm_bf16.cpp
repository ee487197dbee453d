// bf16 tile GEMM for flash attention: A and B rounded to bf16 (nearest even) and packed in pairs along K, then AMX
// tiles (tdpbf16ps: a 16x16 fp32 block += 16x32 by 32x16 bf16) where the CPU has AMX-BF16, else AVX512-BF16
// microkernels (vdpbf16ps: 32 products summed into 16 fp32 lanes per instruction). Where the CPU or the build lacks
// both: the same rounded values through the fp32 tile GEMM (a bf16 x bf16 product is exact in fp32).
#include "attention/cpu/flash_tiles.h"
#include "core/bf16.h"
#include "core/cpu/amx.h"
#include "core/cpu/cpu_features.h"

#if defined(__AVX512BF16__)
#include <immintrin.h>
#endif

#include <vector>

namespace rt::flash {
namespace {

// Per-thread grow-only scratch (the flash drivers call the tile GEMM inside OpenMP parallel regions).
template <class T>
T* scratch(std::vector<T>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
  return v.data();
}
thread_local std::vector<float> t_a_rounded, t_b_rounded;

// The fallback: round both operands as stored, then the fp32 tile GEMM.
void run_rounded(int64_t M, int64_t N, int64_t K, const float* a, int64_t a_rs, int64_t a_ts, const float* b,
                 int64_t ldb, bool accumulate, float* y, int64_t ldy) {
  float* ar = scratch(t_a_rounded, M * K);
  float* br = scratch(t_b_rounded, K * N);
  for (int64_t r = 0; r < M; ++r)
    for (int64_t t = 0; t < K; ++t) ar[r * K + t] = bf16_round(a[r * a_rs + t * a_ts]);
  for (int64_t t = 0; t < K; ++t)
    for (int64_t n = 0; n < N; ++n) br[t * N + n] = bf16_round(b[t * ldb + n]);
  TileGemmAvx512::run(M, N, K, ar, K, 1, br, N, accumulate, y, ldy);
}

#if defined(__AVX512BF16__)

thread_local std::vector<uint32_t> t_a_pairs, t_b_pairs;

// 16 pairs (x0[i], x1[i]) of bf16 as 16 words: vcvtne2ps2bf16 gives [x0 | x1], vpermw interleaves the halves.
inline __m512i pairs16(__m512 x0, __m512 x1) {
  static const __m512i kInterleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23,
                                                      7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  return _mm512_permutexvar_epi16(kInterleave, (__m512i)_mm512_cvtne2ps_pbh(x1, x0));
}

// Rows u = 0 .. ceil(K/2) of words: word (u, c) = (x[2u][c], x[2u + 1][c]) for c < C, row stride `ld` of x, a missing
// last row counted as 0; out rows are Cp = round_up(C, 16) words, the columns past C zero.
void pack_row_pairs(const float* x, int64_t ld, int64_t K, int64_t C, uint32_t* out, int64_t Cp) {
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t u = 0; 2 * u < K; ++u) {
    const float* r0 = x + 2 * u * ld;
    const float* r1 = 2 * u + 1 < K ? r0 + ld : nullptr;
    for (int64_t c = 0; c < Cp; c += 16) {
      const __mmask16 m = c + 16 <= C ? 0xffff : c < C ? static_cast<__mmask16>((1u << (C - c)) - 1) : 0;
      const __m512 x0 = _mm512_maskz_loadu_ps(m, r0 + c), x1 = r1 ? _mm512_maskz_loadu_ps(m, r1 + c) : zero;
      _mm512_storeu_si512(out + u * Cp + c, pairs16(x0, x1));
    }
  }
}

// Rows r of words: word (r, u) = (x[r][2u], x[r][2u + 1]) of a row-major x: the bf16 row itself, in pairs.
void pack_rows_bf16(const float* x, int64_t ld, int64_t M, int64_t K, uint32_t* out, int64_t K2) {
  for (int64_t r = 0; r < M; ++r) {
    const float* xr = x + r * ld;
    uint32_t* o = out + r * K2;
    int64_t t = 0;
    for (; t + 32 <= K; t += 32)
      _mm512_storeu_si512(o + t / 2,
                          (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(xr + t + 16), _mm512_loadu_ps(xr + t)));
    for (; t < K; t += 2)
      o[t / 2] = bf16_bits(xr[t]) | static_cast<uint32_t>(t + 1 < K ? bf16_bits(xr[t + 1]) : 0) << 16;
  }
}

// Y (R, 16*NV) [+]= A (R, K) B (K, 16*NV) over K2 pairs: A word (r, u) at a[r*a_rs + u*a_us], B word (u, c) at
// b[u*ldb + c]; the last vector's columns limited to `last`. R*NV accumulators + NV B vectors + 1 broadcast <= 32.
template <int R, int NV>
inline void micro(int64_t K2, const uint32_t* a, int64_t a_rs, int64_t a_us, const uint32_t* b, int64_t ldb,
                  bool accumulate, float* y, int64_t ldy, __mmask16 last) {
  __m512 acc[R][NV];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int c = 0; c < NV; ++c)
      acc[r][c] =
          accumulate ? _mm512_maskz_loadu_ps(c == NV - 1 ? last : 0xffff, y + r * ldy + 16 * c) : _mm512_setzero_ps();
  for (int64_t u = 0; u < K2; ++u) {
    __m512i bv[NV];
#pragma GCC unroll 8
    for (int c = 0; c < NV; ++c) bv[c] = _mm512_loadu_si512(b + u * ldb + 16 * c);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m512i av = _mm512_set1_epi32(static_cast<int>(a[r * a_rs + u * a_us]));
#pragma GCC unroll 8
      for (int c = 0; c < NV; ++c) acc[r][c] = _mm512_dpbf16_ps(acc[r][c], (__m512bh)av, (__m512bh)bv[c]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int c = 0; c < NV; ++c) _mm512_mask_storeu_ps(y + r * ldy + 16 * c, c == NV - 1 ? last : 0xffff, acc[r][c]);
}

template <int NV>
constexpr int kRows = NV <= 2 ? 12 : 24 / NV;

template <int R, int NV>
inline void micro_tail(int rem, int64_t K2, const uint32_t* a, int64_t a_rs, int64_t a_us, const uint32_t* b,
                       int64_t ldb, bool accumulate, float* y, int64_t ldy, __mmask16 last) {
  if constexpr (R >= 1) {
    if (rem == R) return micro<R, NV>(K2, a, a_rs, a_us, b, ldb, accumulate, y, ldy, last);
    micro_tail<R - 1, NV>(rem, K2, a, a_rs, a_us, b, ldb, accumulate, y, ldy, last);
  }
}

// All M rows of one panel of NV column vectors, in blocks of kRows<NV> (a remainder split in two, as in the fp32 one).
template <int NV>
void panel(int64_t M, int64_t K2, const uint32_t* a, int64_t a_rs, int64_t a_us, const uint32_t* b, int64_t ldb,
           bool accumulate, float* y, int64_t ldy, __mmask16 last) {
  constexpr int R = kRows<NV>;
  auto block = [&](int64_t r0, int rows) {
    micro_tail<R, NV>(rows, K2, a + r0 * a_rs, a_rs, a_us, b, ldb, accumulate, y + r0 * ldy, ldy, last);
  };
  int64_t r0 = 0;
  for (; M - r0 >= 2 * R; r0 += R)
    micro<R, NV>(K2, a + r0 * a_rs, a_rs, a_us, b, ldb, accumulate, y + r0 * ldy, ldy, last);
  const int rem = static_cast<int>(M - r0);
  if (rem > R) {
    block(r0, (rem + 1) / 2);
    block(r0 + (rem + 1) / 2, rem / 2);
  } else if (rem > 0) {
    block(r0, rem);
  }
}

void run_native(int64_t M, int64_t N, int64_t K, const float* a, int64_t a_rs, int64_t a_ts, const float* b,
                int64_t ldb, bool accumulate, float* y, int64_t ldy) {
  const int64_t K2 = (K + 1) / 2, Np = round_up(N, 16);
  uint32_t* bw = scratch(t_b_pairs, K2 * Np);
  pack_row_pairs(b, ldb, K, N, bw, Np);
  // A as words: row-major A packs row by row (word (r, u) at aw[r*K2 + u]); a transposed A (the K rows of A^T are
  // rows of memory) packs like B (word (r, u) at aw[u*Mp + r]).
  const int64_t Mp = round_up(M, 16);
  uint32_t* aw = scratch(t_a_pairs, a_ts == 1 ? M * K2 : K2 * Mp);
  int64_t w_rs = K2, w_us = 1;
  if (a_ts == 1) {
    pack_rows_bf16(a, a_rs, M, K, aw, K2);
  } else {
    RT_CHECK(a_rs == 1, "tile GEMM: A must be row- or column-major");
    pack_row_pairs(a, a_ts, K, M, aw, Mp);
    w_rs = 1, w_us = Mp;
  }
  const __mmask16 tail = N % 16 == 0 ? 0xffff : static_cast<__mmask16>((1u << (N % 16)) - 1);
  int64_t n0 = 0;
  for (; n0 + 64 <= N; n0 += 64) panel<4>(M, K2, aw, w_rs, w_us, bw + n0, Np, accumulate, y + n0, ldy, 0xffff);
  switch ((Np - n0) / 16) {
    case 4:
      panel<4>(M, K2, aw, w_rs, w_us, bw + n0, Np, accumulate, y + n0, ldy, tail);
      break;
    case 3:
      panel<3>(M, K2, aw, w_rs, w_us, bw + n0, Np, accumulate, y + n0, ldy, tail);
      break;
    case 2:
      panel<2>(M, K2, aw, w_rs, w_us, bw + n0, Np, accumulate, y + n0, ldy, tail);
      break;
    case 1:
      panel<1>(M, K2, aw, w_rs, w_us, bw + n0, Np, accumulate, y + n0, ldy, tail);
      break;
    default:
      break;
  }
}


#if defined(__AMX_BF16__)

// Tiles 0-3: C blocks (16 x 16 fp32), 4-5: A (16 rows x 16 words), 6-7: B (16 word rows x 16 columns).
thread_local std::vector<uint32_t> t_amx_a, t_amx_b, t_amx_t;
thread_local std::vector<float> t_amx_c;

// A block of MT x NT C tiles (rows m0.., columns n0..) over K2p words: aw (Mp, K2p) row-major words, bw (K2p, Np).
// c, ldc: where the C tiles live (y itself or a scratch), loaded first when accumulating.
template <int MT, int NT>
inline void amx_block(int64_t K2p, const uint32_t* aw, const uint32_t* bw, int64_t Np, bool accumulate, float* c,
                      int64_t ldc) {
  const int64_t sc = ldc * 4, sa = K2p * 4, sb = Np * 4;
  if (accumulate) {
    _tile_loadd(0, c, sc);
    if constexpr (NT > 1) _tile_loadd(1, c + 16, sc);
    if constexpr (MT > 1) _tile_loadd(2, c + 16 * ldc, sc);
    if constexpr (MT > 1 && NT > 1) _tile_loadd(3, c + 16 * ldc + 16, sc);
  } else {
    _tile_zero(0);
    if constexpr (NT > 1) _tile_zero(1);
    if constexpr (MT > 1) _tile_zero(2);
    if constexpr (MT > 1 && NT > 1) _tile_zero(3);
  }
  for (int64_t u0 = 0; u0 < K2p; u0 += 16) {
    _tile_loadd(4, aw + u0, sa);
    if constexpr (MT > 1) _tile_loadd(5, aw + 16 * K2p + u0, sa);
    _tile_loadd(6, bw + u0 * Np, sb);
    if constexpr (NT > 1) _tile_loadd(7, bw + u0 * Np + 16, sb);
    _tile_dpbf16ps(0, 4, 6);
    if constexpr (NT > 1) _tile_dpbf16ps(1, 4, 7);
    if constexpr (MT > 1) _tile_dpbf16ps(2, 5, 6);
    if constexpr (MT > 1 && NT > 1) _tile_dpbf16ps(3, 5, 7);
  }
  _tile_stored(0, c, sc);
  if constexpr (NT > 1) _tile_stored(1, c + 16, sc);
  if constexpr (MT > 1) _tile_stored(2, c + 16 * ldc, sc);
  if constexpr (MT > 1 && NT > 1) _tile_stored(3, c + 16 * ldc + 16, sc);
}

void run_amx(int64_t M, int64_t N, int64_t K, const float* a, int64_t a_rs, int64_t a_ts, const float* b, int64_t ldb,
             bool accumulate, float* y, int64_t ldy) {
  // K padded to whole A-tile widths (32 bf16 = 16 words), M and N to whole tiles, all with zeros.
  const int64_t K2p = round_up(K, 32) / 2, Mp = round_up(M, 16), Np = round_up(N, 16);
  uint32_t* bw = scratch(t_amx_b, K2p * Np);
  pack_row_pairs(b, ldb, K, N, bw, Np);
  std::fill(bw + (K + 1) / 2 * Np, bw + K2p * Np, 0u);
  uint32_t* aw = scratch(t_amx_a, Mp * K2p);
  if (a_ts == 1) {
    pack_rows_bf16(a, a_rs, M, K, aw, K2p);
    for (int64_t r = 0; r < M; ++r) std::fill(aw + r * K2p + (K + 1) / 2, aw + (r + 1) * K2p, 0u);
  } else {
    RT_CHECK(a_rs == 1, "tile GEMM: A must be row- or column-major");
    // The K rows of A^T pack as pairs (word (u, r) at tw[u*Mp + r]), then the words transpose to rows of A.
    uint32_t* tw = scratch(t_amx_t, K2p * Mp);
    pack_row_pairs(a, a_ts, K, M, tw, Mp);
    const int64_t K2 = (K + 1) / 2;
    for (int64_t r = 0; r < M; ++r) {
      uint32_t* ar = aw + r * K2p;
      for (int64_t u = 0; u < K2; ++u) ar[u] = tw[u * Mp + r];
      std::fill(ar + K2, ar + K2p, 0u);
    }
  }
  std::fill(aw + M * K2p, aw + Mp * K2p, 0u);
  // C straight in y where the tiles fit it exactly, else in a scratch copied (or added) to y at the end.
  const bool direct = M == Mp && N == Np;
  float* c = y;
  int64_t ldc = ldy;
  if (!direct) {
    c = scratch(t_amx_c, Mp * Np), ldc = Np;  // every tile of it is stored below
  }
  static const AmxTileConfig config;
  _tile_loadconfig(&config);  // every call: oneDNN's AMX kernels configure the tiles their own way
  for (int64_t m0 = 0; m0 < Mp; m0 += 32) {
    const bool two_m = m0 + 32 <= Mp;
    for (int64_t n0 = 0; n0 < Np; n0 += 32) {
      const bool two_n = n0 + 32 <= Np;
      const uint32_t* am = aw + m0 * K2p;
      const uint32_t* bn = bw + n0;
      float* cb = c + m0 * ldc + n0;
      const bool acc = direct && accumulate;
      if (two_m && two_n) amx_block<2, 2>(K2p, am, bn, Np, acc, cb, ldc);
      else if (two_m) amx_block<2, 1>(K2p, am, bn, Np, acc, cb, ldc);
      else if (two_n) amx_block<1, 2>(K2p, am, bn, Np, acc, cb, ldc);
      else amx_block<1, 1>(K2p, am, bn, Np, acc, cb, ldc);
    }
  }
  if (direct) return;
  for (int64_t r = 0; r < M; ++r) {
    float* yr = y + r * ldy;
    const float* cr = c + r * ldc;
    if (accumulate)
      for (int64_t n = 0; n < N; ++n) yr[n] += cr[n];
    else
      std::copy(cr, cr + N, yr);
  }
}

#endif  // __AMX_BF16__

#endif  // __AVX512BF16__

}  // namespace

bool TileGemmBf16::native() {
#if defined(__AVX512BF16__)
  static const bool ok = cpu_features().avx512_bf16;
  return ok;
#else
  return false;
#endif
}

bool TileGemmBf16::amx() {
#if defined(__AVX512BF16__) && defined(__AMX_BF16__)
  static const bool ok = native() && cpu_features().amx_bf16 && amx_request_permission();
  return ok;
#else
  return false;
#endif
}

bool TileGemmBf16::preferred() { return amx() || (native() && cpu_features().amd); }

void TileGemmBf16::run(int64_t M, int64_t N, int64_t K, const float* a, int64_t a_rs, int64_t a_ts, const float* b,
                       int64_t ldb, bool accumulate, float* y, int64_t ldy) {
  if (M == 0 || N == 0) return;
#if defined(__AVX512BF16__) && defined(__AMX_BF16__)
  if (amx()) return run_amx(M, N, K, a, a_rs, a_ts, b, ldb, accumulate, y, ldy);
#endif
#if defined(__AVX512BF16__)
  if (native()) return run_native(M, N, K, a, a_rs, a_ts, b, ldb, accumulate, y, ldy);
#endif
  run_rounded(M, N, K, a, a_rs, a_ts, b, ldb, accumulate, y, ldy);
}

}  // namespace rt::flash
