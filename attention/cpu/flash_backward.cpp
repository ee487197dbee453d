// Flash attention backward on the CPU (FlashAttention-2): threads own (kv head, key tile) pairs and their dK/dV;
// dQ goes to per-thread buffers summed at the end.
#include <omp.h>

#include <type_traits>
#include <vector>

#include "attention/cpu/flash_options.h"
#include "attention/cpu/flash_tiles.h"

namespace rt {
namespace flash {
namespace {

// q, dout, dq: (Tq,Hq,D); k, v, dk, dv: (Tk,Hk,D); lse, delta: (Hq,Tq). Accumulates into dq, dk, dv.
// K: Kernels<tile GEMM, row passes>. bf16: every operand of a tile product (the packed Q, dO, K and V, and P and dS
// after the softmax gradient) is rounded to bf16 first.
template <class K, bool kBf16>
void backward(const AttentionProblem& p, const float* q, const float* k, const float* v, const float* dout,
              const float* lse, const float* delta, float* dq, float* dk, float* dv, int64_t Bq, int64_t Bk) {
  const int64_t D = p.D, ldq = p.Hq * D, ldk = p.Hk * D, group = p.Hq / p.Hk;
  const int64_t nqt = ceil_div(p.Tq, Bq), nkt = ceil_div(p.Tk, Bk), nq = p.Tq * ldq;
  // Head-major copies qh, doh (Hq, Tq, D) of q and dout: in the (Tq,Hq,D) layout a head's rows are Hq*D apart, a
  // power-of-two stride whose rows share a few L1 sets and evict each other inside the tile GEMMs.
  float* qh = workspace(kSlotQ, nq);
  float* doh = workspace(kSlotDout, nq);
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t h = 0; h < p.Hq; ++h)
    for (int64_t it = 0; it < nqt; ++it) {
      const int64_t i0 = it * Bq, bq = std::min(Bq, p.Tq - i0);
      pack_rows(q + i0 * ldq + h * D, ldq, bq, D, qh + (h * p.Tq + i0) * D);
      pack_rows(dout + i0 * ldq + h * D, ldq, bq, D, doh + (h * p.Tq + i0) * D);
      if constexpr (kBf16) {
        round_bf16(qh + (h * p.Tq + i0) * D, bq * D);
        round_bf16(doh + (h * p.Tq + i0) * D, bq * D);
      }
    }
  // dQ of thread t goes to dq_part[t], head-major (Hq,Tq,D), summed into dq in thread order at the end.
  std::vector<float*> dq_part;
#pragma omp parallel
  {
    const int tid = omp_get_thread_num();
#pragma omp single
    for (int t = 0; t < omp_get_num_threads(); ++t) dq_part.push_back(workspace(kSlotDq0 + t, nq));
    float* dqt = dq_part[tid];
    std::memset(dqt, 0, static_cast<size_t>(nq) * sizeof(float));

    // kt, vt (D, Bk): the key tile's K and V transposed; kc (Bk, D): its K rows contiguous; dka, dva (Bk, D): its
    // dK, dV; s, dp (Bq, Bk): S -> P and dP -> dS of one query tile.
    AlignedBuf kt(D * Bk), vt(D * Bk), kc(Bk * D), dka(Bk * D), dva(Bk * D), s(Bq * Bk), dp(Bq * Bk);
    // Round-robin (static, 1): a fixed tile -> thread map makes each thread's dQ sum, hence dq, bit-reproducible
    // (dynamic scheduling would not be); neighbouring key tiles cost about the same, so the load stays balanced.
#pragma omp for collapse(2) schedule(static, 1)
    for (int64_t kv = 0; kv < p.Hk; ++kv)
      for (int64_t jt = 0; jt < nkt; ++jt) {
        const int64_t j0 = jt * Bk, bk = std::min(Bk, p.Tk - j0);
        const int64_t i_first = p.causal ? std::max<int64_t>(0, p.k_offset + j0 - p.q_offset) : 0;
        if (i_first >= p.Tq) continue;  // no query sees this tile
        const float* kj = k + j0 * ldk + kv * D;
        const float* vj = v + j0 * ldk + kv * D;
        pack_transposed(kj, ldk, bk, D, kt.get(), Bk);
        pack_transposed(vj, ldk, bk, D, vt.get(), Bk);
        pack_rows(kj, ldk, bk, D, kc.get());
        if constexpr (kBf16) {
          round_bf16(kt.get(), D * Bk);
          round_bf16(vt.get(), D * Bk);
          round_bf16(kc.get(), bk * D);
        }
        std::fill(dka.get(), dka.get() + bk * D, 0.f);
        std::fill(dva.get(), dva.get() + bk * D, 0.f);
        for (int64_t h = kv * group; h < (kv + 1) * group; ++h)
          for (int64_t it = i_first / Bq; it < nqt; ++it) {
            const int64_t i0 = it * Bq, bq = std::min(Bq, p.Tq - i0);
            const int64_t diag = p.q_offset + i0 - p.k_offset - j0 + 1;
            const DocRange doc = doc_range(p, i0, bq);
            if (doc.lo_min >= j0 + bk) continue;  // every row's document starts after this key tile
            // Query rows [r0, r0 + rows) of the tile against keys [0, n): s = Q Kt, dp = dO Vt (rows, round16(n)),
            // P and dS' = scale * dS, then dV (n, D) += P^T dO, dQ (rows, D) += dS' K, dK (n, D) += dS'^T Q.
            // doc_cut: some row's document starts after key j0 (P = dS = 0 for those keys).
            auto step = [&](auto masked, int64_t r0, int64_t rows, int64_t n, bool doc_cut) {
              const int64_t row = h * p.Tq + i0 + r0;  // first row in the head-major (Hq, Tq, D) arrays
              const float* qi = qh + row * D;
              const float* doi = doh + row * D;
              K::G::run(rows, round_up(n, 16), D, qi, D, 1, kt.get(), Bk, false, s.get(), Bk);
              K::G::run(rows, round_up(n, 16), D, doi, D, 1, vt.get(), Bk, false, dp.get(), Bk);
              K::R::template softmax_grad<decltype(masked)::value, kBf16>(rows, n, diag + r0, p.scale,
                                                                   lse + h * p.Tq + i0 + r0, delta + h * p.Tq + i0 + r0,
                                                                   s.get(), dp.get(), Bk);
              if (doc_cut) {
                mask_documents(p, i0 + r0, rows, j0, n, s.get(), Bk, 0.f);
                mask_documents(p, i0 + r0, rows, j0, n, dp.get(), Bk, 0.f);
              }
              K::G::run(n, D, rows, s.get(), 1, Bk, doi, D, true, dva.get(), D);
              K::G::run(rows, D, n, dp.get(), Bk, 1, kc.get(), D, true, dqt + row * D, D);
              K::G::run(n, D, rows, dp.get(), 1, Bk, qi, D, true, dka.get(), D);
            };
            if (visible_keys(p, i0) >= j0 + bk && doc.lo_max <= j0) {  // every row sees the whole tile
              step(std::false_type{}, 0, bq, bk, false);
              continue;
            }
            // Diagonal-crossing or document-cut tile: row blocks, each only up to the keys its last row sees,
            // skipped where every row's document starts after those keys.
            for (int64_t r0 = 0; r0 < bq; r0 += kDiagRows) {
              const int64_t rows = std::min(kDiagRows, bq - r0), n = row_visible(diag, r0 + rows - 1, bk);
              const DocRange block = doc_range(p, i0 + r0, rows);
              if (n > 0 && block.lo_min < j0 + n) step(std::true_type{}, r0, rows, n, block.lo_max > j0);
            }
          }
        for (int64_t j = 0; j < bk; ++j) {
          float* dkj = dk + (j0 + j) * ldk + kv * D;
          float* dvj = dv + (j0 + j) * ldk + kv * D;
          const float* dkaj = dka.get() + j * D;
          const float* dvaj = dva.get() + j * D;
#pragma omp simd
          for (int64_t d = 0; d < D; ++d) {
            dkj[d] += dkaj[d];
            dvj[d] += dvaj[d];
          }
        }
      }
    // dq (Tq,Hq,D) += the threads' head-major parts, in thread order
#pragma omp for collapse(2) schedule(static)
    for (int64_t i = 0; i < p.Tq; ++i)
      for (int64_t h = 0; h < p.Hq; ++h) {
        float* dqi = dq + i * ldq + h * D;
        for (const float* part : dq_part) {
          const float* src = part + (h * p.Tq + i) * D;
#pragma omp simd
          for (int64_t d = 0; d < D; ++d) dqi[d] += src[d];
        }
      }
  }
}

}  // namespace
}  // namespace flash

void attention_flash_backward_with(const FlashOptions& opt, const AttentionProblem& p, const float* q, const float* k,
                                   const float* v, const float* dout, const float* lse, const float* delta, float* dq,
                                   float* dk, float* dv) {
  flash::check_problem(p);
  const int64_t Bq = opt.block_q > 0 ? opt.block_q : flash::default_block(p);
  const int64_t Bk = opt.block_k > 0 ? opt.block_k : flash::default_block(p);
  RT_CHECK(Bk % 16 == 0, "flash attention: block_k must be a multiple of 16, got " + std::to_string(Bk));
  if (p.Tq == 0 || p.Tk == 0) return;
  const FlashGemm gemm = flash::gemm_for(opt, p);
  auto run = [&](auto kernels) {
    using K = decltype(kernels);
    if (p.bf16_inputs || gemm == FlashGemm::kBf16)
      return flash::backward<K, true>(p, q, k, v, dout, lse, delta, dq, dk, dv, Bq, Bk);
    flash::backward<K, false>(p, q, k, v, dout, lse, delta, dq, dk, dv, Bq, Bk);
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

void attention_flash_backward(const AttentionProblem& p, const float* q, const float* k, const float* v,
                              const float* dout, const float* lse, const float* delta, float* dq, float* dk,
                              float* dv) {
  attention_flash_backward_with(FlashOptions{}, p, q, k, v, dout, lse, delta, dq, dk, dv);
}

}  // namespace rt
