// Flash attention row passes (softmax of a score tile) with AVX-512 intrinsics; the portable ones without AVX-512.
#if defined(__AVX512F__)
// GCC 12's avx512fintrin.h trips -W(maybe-)uninitialized on its own `__m512 __Y = __Y` (GCC PR 105593, fixed in
// GCC 13); the warning is silenced for the lines of that header only (clang has no -Wmaybe-uninitialized).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#pragma GCC diagnostic pop
#endif

#include "attention/cpu/flash_tiles.h"

// The row passes the drivers use: masked or not, bf16 or not (explicit instantiations, in either branch below).
#define RT_ROWS_INSTANTIATE(kMasked, kBf16)                                                                         \
  template void RowsAvx512::softmax_online<kMasked, kBf16>(int64_t, int64_t, int64_t, float*, int64_t, float*, float*, \
                                                           float*, float);                                           \
  template void RowsAvx512::softmax_grad<kMasked, kBf16>(int64_t, int64_t, int64_t, float, const float*, const float*, \
                                                         float*, float*, int64_t);
#define RT_ROWS_INSTANTIATE_ALL \
  RT_ROWS_INSTANTIATE(false, false) RT_ROWS_INSTANTIATE(true, false) RT_ROWS_INSTANTIATE(false, true) RT_ROWS_INSTANTIATE(true, true)

#if defined(__AVX512F__)

namespace rt::flash {
namespace {

// cpu::exp_fast on 16 lanes: the same clamp, Cody-Waite reduction x = n ln2 + r, degree-6 polynomial and
// exponent-bit scaling, in 17 instructions (GCC's `omp simd` version of exp_fast takes ~30: it turns the clamps
// into masked arithmetic). 0 for x <= -87.34, including -inf.
inline __m512 exp16(__m512 x) {
  const __m512 lo = _mm512_set1_ps(-87.33654f);
  x = _mm512_min_ps(_mm512_max_ps(x, lo), _mm512_set1_ps(88.37f));
  const __m512 shifter = _mm512_set1_ps(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
  const __m512 n = _mm512_sub_ps(_mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), shifter), shifter);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  const __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  return _mm512_maskz_mul_ps(_mm512_cmp_ps_mask(x, lo, _CMP_GT_OQ), p, _mm512_castsi512_ps(bits));
}

// x rounded to bf16 (nearest even) on 16 lanes, kept as fp32.
inline __m512 round_bf16_16(__m512 x) {
  const __m512i u = _mm512_castps_si512(x);
  const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  const __m512i r = _mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), odd);
  return _mm512_castsi512_ps(_mm512_and_si512(r, _mm512_set1_epi32(static_cast<int>(0xffff0000u))));
}
template <bool kBf16>
inline __m512 stored(__m512 x) {
  if constexpr (kBf16) return round_bf16_16(x);
  return x;
}

// Lanes [0, n) set, n in [0, 16].
inline __mmask16 lanes_below(int64_t n) { return static_cast<__mmask16>((1u << n) - 1u); }

}  // namespace

// Same contracts as RowsPortable (flash_tiles.h); rows are vectors of 16 keys, the last one lane-masked.
template <bool kMasked, bool kBf16>
void RowsAvx512::softmax_online(int64_t bq, int64_t bk, int64_t diag, float* s, int64_t lds, float* m, float* l,
                                float* alpha, float score_scale) {
  const int64_t width = round_up(bk, 16);
  const __m512 sc = _mm512_set1_ps(score_scale);
  auto scaled = [&](__m512 x) { return kBf16 ? _mm512_mul_ps(sc, x) : x; };
  auto load = [&](const float* x) { return scaled(_mm512_loadu_ps(x)); };
  for (int64_t i = 0; i < bq; ++i) {
    float* si = s + i * lds;
    const int64_t n = kMasked ? row_visible(diag, i, bk) : bk;
    const int64_t n16 = n / 16 * 16;
    __m512 vmax = _mm512_set1_ps(kNegInf);
    for (int64_t j = 0; j < n16; j += 16) vmax = _mm512_max_ps(vmax, load(si + j));
    const __mmask16 tail = lanes_below(n - n16);
    vmax = _mm512_mask_max_ps(vmax, tail, vmax, scaled(_mm512_maskz_loadu_ps(tail, si + n16)));
    const float m_new = std::max(m[i], _mm512_reduce_max_ps(vmax));
    if (kMasked && m_new == kNegInf) {  // no key seen so far: nothing to add, nothing to rescale
      for (int64_t j = 0; j < width; j += 16) _mm512_storeu_ps(si + j, _mm512_setzero_ps());
      alpha[i] = 1.f;
      continue;
    }
    const __m512 mv = _mm512_set1_ps(m_new);
    __m512 sum = _mm512_setzero_ps();
    for (int64_t j = 0; j < n16; j += 16) {
      const __m512 e = exp16(_mm512_sub_ps(load(si + j), mv));
      _mm512_storeu_ps(si + j, stored<kBf16>(e));
      sum = _mm512_add_ps(sum, e);
    }
    if (n16 < width) {  // the partial vector, then masked or padding vectors
      const __m512 e = _mm512_maskz_mov_ps(tail, exp16(_mm512_sub_ps(load(si + n16), mv)));
      _mm512_storeu_ps(si + n16, stored<kBf16>(e));
      sum = _mm512_add_ps(sum, e);
      for (int64_t j = n16 + 16; j < width; j += 16) _mm512_storeu_ps(si + j, _mm512_setzero_ps());
    }
    alpha[i] = cpu::exp_fast(m[i] - m_new);  // m_old = -inf -> 0
    float* li = l + i * kSumLanes;
    _mm512_storeu_ps(li, _mm512_fmadd_ps(_mm512_loadu_ps(li), _mm512_set1_ps(alpha[i]), sum));
    m[i] = m_new;
  }
}

float RowsAvx512::row_sum(const float* li) { return _mm512_reduce_add_ps(_mm512_loadu_ps(li)); }

template <bool kMasked, bool kBf16>
void RowsAvx512::softmax_grad(int64_t bq, int64_t bk, int64_t diag, float scale, const float* lse, const float* delta,
                              float* s, float* dp, int64_t ld) {
  const int64_t width = round_up(bk, 16);
  const __m512 sc = _mm512_set1_ps(scale);
  for (int64_t i = 0; i < bq; ++i) {
    float* si = s + i * ld;
    float* dpi = dp + i * ld;
    const int64_t n = kMasked ? row_visible(diag, i, bk) : bk;
    const int64_t n16 = n / 16 * 16;
    const __m512 li = _mm512_set1_ps(lse[i]), di = _mm512_set1_ps(delta[i]);
    auto step = [&](int64_t j, __mmask16 keep) {
      const __m512 p = _mm512_maskz_mov_ps(keep, exp16(_mm512_fmsub_ps(sc, _mm512_loadu_ps(si + j), li)));
      _mm512_storeu_ps(si + j, stored<kBf16>(p));
      _mm512_storeu_ps(dpi + j, stored<kBf16>(_mm512_mul_ps(_mm512_mul_ps(sc, p), _mm512_sub_ps(_mm512_loadu_ps(dpi + j), di))));
    };
    for (int64_t j = 0; j < n16; j += 16) step(j, 0xffff);
    if (n16 < width) {  // the partial vector, then masked or padding vectors
      if (n > n16) step(n16, lanes_below(n - n16));
      for (int64_t j = n > n16 ? n16 + 16 : n16; j < width; j += 16) {
        _mm512_storeu_ps(si + j, _mm512_setzero_ps());
        _mm512_storeu_ps(dpi + j, _mm512_setzero_ps());
      }
    }
  }
}

RT_ROWS_INSTANTIATE_ALL

}  // namespace rt::flash

#else  // no AVX-512 in this build: the portable row passes

namespace rt::flash {

template <bool kMasked, bool kBf16>
void RowsAvx512::softmax_online(int64_t bq, int64_t bk, int64_t diag, float* s, int64_t lds, float* m, float* l,
                                float* alpha, float score_scale) {
  RowsPortable::softmax_online<kMasked, kBf16>(bq, bk, diag, s, lds, m, l, alpha, score_scale);
}
float RowsAvx512::row_sum(const float* li) { return RowsPortable::row_sum(li); }
template <bool kMasked, bool kBf16>
void RowsAvx512::softmax_grad(int64_t bq, int64_t bk, int64_t diag, float scale, const float* lse, const float* delta,
                              float* s, float* dp, int64_t ld) {
  RowsPortable::softmax_grad<kMasked, kBf16>(bq, bk, diag, scale, lse, delta, s, dp, ld);
}

RT_ROWS_INSTANTIATE_ALL

}  // namespace rt::flash

#endif
