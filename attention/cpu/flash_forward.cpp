// Flash attention forward on the CPU: per (head, query tile), online softmax over key tiles; and delta.
#include <omp.h>

#include <cmath>
#include <type_traits>

#include "attention/cpu/flash_options.h"
#include "attention/cpu/flash_tiles.h"

namespace rt {
namespace flash {
namespace {

// q, o: (Tq,Hq,D); k, v: (Tk,Hk,D); lse: (Hq,Tq). K: Kernels<tile GEMM, row passes>. bf16: every operand of a
// tile product (the packed K and V tiles, the Q tile, and P after the softmax) is rounded to bf16 first.
template <class K, bool kBf16>
void forward(const AttentionProblem& p, const float* q, const float* k, const float* v, float* o, float* lse,
             int64_t Bq, int64_t Bk) {
  const int64_t D = p.D, ldq = p.Hq * D, ldk = p.Hk * D, group = p.Hq / p.Hk;
  const int64_t nqt = ceil_div(p.Tq, Bq), nkt = ceil_div(p.Tk, Bk);
  // kt: (Hk, nkt, D, Bk) key tiles transposed (keys along the vector lanes of S = Q Kt), zero-padded;
  // vp: (Hk, nkt, Bk, D) value tiles packed contiguous (V's rows are Hk*D apart: a power-of-two stride whose
  // rows would share a few L1 sets and evict each other during O += P V).
  float* kt = workspace(kSlotKt, p.Hk * nkt * D * Bk);
  float* vp = workspace(kSlotV, p.Hk * nkt * Bk * D);
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t kv = 0; kv < p.Hk; ++kv)
    for (int64_t jt = 0; jt < nkt; ++jt) {
      const int64_t j0 = jt * Bk, bk = std::min(Bk, p.Tk - j0);
      pack_transposed(k + j0 * ldk + kv * D, ldk, bk, D, kt + (kv * nkt + jt) * D * Bk, Bk);
      pack_rows(v + j0 * ldk + kv * D, ldk, bk, D, vp + (kv * nkt + jt) * Bk * D);
      if constexpr (kBf16) {
        round_bf16(kt + (kv * nkt + jt) * D * Bk, D * Bk);
        round_bf16(vp + (kv * nkt + jt) * Bk * D, bk * D);
      }
    }

#pragma omp parallel
  {
    AlignedBuf qs(Bq * D), s(Bq * Bk), acc(Bq * D), m(Bq), l(Bq * kSumLanes), alpha(Bq);
    // Causal cost grows with the query tile: hand out the big tiles first.
#pragma omp for collapse(2) schedule(dynamic)
    for (int64_t h = 0; h < p.Hq; ++h)
      for (int64_t rt = 0; rt < nqt; ++rt) {
        const int64_t it = nqt - 1 - rt, i0 = it * Bq, bq = std::min(Bq, p.Tq - i0), kv = h / group;
        const int64_t nk = visible_keys(p, i0 + bq - 1);  // keys seen by the last row
        const int64_t nfull = visible_keys(p, i0);        // keys seen by every row
        float* oh = o + i0 * ldq + h * D;
        float* lh = lse + h * p.Tq + i0;
        if (nk == 0) {
          for (int64_t i = 0; i < bq; ++i) {
            std::fill(oh + i * ldq, oh + i * ldq + D, 0.f);
            lh[i] = kNegInf;
          }
          continue;
        }
        // qs (bq, D) = scale * q tile, so the scores come out scaled; with bf16 inputs q itself (it is rounded as
        // given, as the backward rounds it) and the scores are scaled in fp32 after the product.
        const float q_scale = kBf16 ? 1.f : p.scale;
        for (int64_t i = 0; i < bq; ++i) {
          const float* qi = q + (i0 + i) * ldq + h * D;
          float* qsi = qs.get() + i * D;
#pragma omp simd
          for (int64_t d = 0; d < D; ++d) qsi[d] = q_scale * qi[d];
          if constexpr (kBf16) round_bf16(qsi, D);
        }
        std::fill(m.get(), m.get() + bq, kNegInf);
        std::fill(l.get(), l.get() + bq * kSumLanes, 0.f);
        std::fill(acc.get(), acc.get() + bq * D, 0.f);
        // Document masking: key tiles before every row's document are skipped.
        const DocRange doc = doc_range(p, i0, bq);
        for (int64_t jt = doc.lo_min / Bk; jt * Bk < nk; ++jt) {
          const int64_t j0 = jt * Bk, bk = std::min(Bk, nk - j0);
          const float* ktile = kt + (kv * nkt + jt) * D * Bk;  // (D, Bk)
          const float* vtile = vp + (kv * nkt + jt) * Bk * D;  // (bk, D)
          const int64_t diag = p.q_offset + i0 - p.k_offset - j0 + 1;
          // Rows [r0, r0 + rows) against keys [0, n) of the tile: s = qs Kt (rows, round16(n)), online softmax,
          // acc = alpha * acc + P V.
          // doc_cut: some row's document starts after key j0 (those keys get -inf scores first).
          auto step = [&](auto masked, int64_t r0, int64_t rows, int64_t n, bool doc_cut) {
            float* sr = s.get() + r0 * Bk;
            K::G::run(rows, round_up(n, 16), D, qs.get() + r0 * D, D, 1, ktile, Bk, false, sr, Bk);
            if (doc_cut) mask_documents(p, i0 + r0, rows, j0, n, sr, Bk, kNegInf);
            K::R::template softmax_online<decltype(masked)::value, kBf16>(
                rows, n, diag + r0, sr, Bk, m.get() + r0, l.get() + r0 * kSumLanes, alpha.get() + r0, p.scale);
            K::R::rescale_rows(rows, D, alpha.get() + r0, acc.get() + r0 * D);
            K::G::run(rows, D, n, sr, Bk, 1, vtile, D, true, acc.get() + r0 * D, D);
          };
          if (j0 + bk <= nfull && doc.lo_max <= j0) {  // every row sees the whole tile
            step(std::false_type{}, 0, bq, bk, false);
            continue;
          }
          // Diagonal-crossing or document-cut tile: row blocks, each only up to the keys its last row sees, skipped
          // where every row's document starts after those keys.
          for (int64_t r0 = 0; r0 < bq; r0 += kDiagRows) {
            const int64_t rows = std::min(kDiagRows, bq - r0), n = row_visible(diag, r0 + rows - 1, bk);
            const DocRange block = doc_range(p, i0 + r0, rows);
            if (n > 0 && block.lo_min < j0 + n) step(std::true_type{}, r0, rows, n, block.lo_max > j0);
          }
        }
        for (int64_t i = 0; i < bq; ++i) {
          float* oi = oh + i * ldq;
          const float* ai = acc.get() + i * D;
          const float li = K::R::row_sum(l.get() + i * kSumLanes);
          if (li == 0.f) {  // this row sees no key
            std::fill(oi, oi + D, 0.f);
            lh[i] = kNegInf;
            continue;
          }
          const float inv = 1.f / li;
#pragma omp simd
          for (int64_t d = 0; d < D; ++d) oi[d] = ai[d] * inv;
          lh[i] = m.get()[i] + std::log(li);
        }
      }
  }
}

}  // namespace
}  // namespace flash

bool flash_avx512_compiled() { return flash::TileGemmAvx512::compiled(); }
bool flash_bf16_native() { return flash::TileGemmBf16::native(); }
bool flash_bf16_amx() { return flash::TileGemmBf16::amx(); }

void attention_flash_forward_with(const FlashOptions& opt, const AttentionProblem& p, const float* q, const float* k,
                                  const float* v, float* o, float* lse) {
  flash::check_problem(p);
  const int64_t Bq = opt.block_q > 0 ? opt.block_q : flash::default_block(p);
  const int64_t Bk = opt.block_k > 0 ? opt.block_k : flash::default_block(p);
  RT_CHECK(Bk % 16 == 0, "flash attention: block_k must be a multiple of 16, got " + std::to_string(Bk));
  if (p.Tq == 0) return;
  const FlashGemm gemm = flash::gemm_for(opt, p);
  auto run = [&](auto kernels) {
    using K = decltype(kernels);
    if (p.bf16_inputs || gemm == FlashGemm::kBf16) return flash::forward<K, true>(p, q, k, v, o, lse, Bq, Bk);
    flash::forward<K, false>(p, q, k, v, o, lse, Bq, Bk);
  };
  switch (gemm) {
    case FlashGemm::kAuto:  // resolved above
    case FlashGemm::kAvx512:
      return run(flash::Kernels<flash::TileGemmAvx512, flash::RowsAvx512>{});
    case FlashGemm::kPortable:
      return run(flash::Kernels<flash::TileGemmPortable, flash::RowsPortable>{});
    case FlashGemm::kOneDnn:
      return run(flash::Kernels<flash::TileGemmOneDnn, flash::RowsAvx512>{});
    case FlashGemm::kBf16:
      return run(flash::Kernels<flash::TileGemmBf16, flash::RowsAvx512>{});
  }
}

void attention_flash_forward(const AttentionProblem& p, const float* q, const float* k, const float* v, float* o,
                             float* lse) {
  attention_flash_forward_with(FlashOptions{}, p, q, k, v, o, lse);
}

// delta (Hq, Tq) = rowsum over D of dout * o; o, dout: (Tq, Hq, D).
void attention_delta(const AttentionProblem& p, const float* o, const float* dout, float* delta) {
  flash::check_problem(p);
  const int64_t D = p.D, ldq = p.Hq * D;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < p.Tq; ++i)
    for (int64_t h = 0; h < p.Hq; ++h) {
      const float* oi = o + i * ldq + h * D;
      const float* di = dout + i * ldq + h * D;
      float s = 0.f;
#pragma omp simd reduction(+ : s)
      for (int64_t d = 0; d < D; ++d) s += oi[d] * di[d];
      delta[h * p.Tq + i] = s;
    }
}

}  // namespace rt
