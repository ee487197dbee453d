// Flash attention building blocks shared by forward and backward: tile GEMMs, masks, softmax row passes.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <utility>

#include "attention/attention_kernels.h"
#include "attention/cpu/flash_options.h"
#include "core/bf16.h"
#include "core/check.h"
#include "core/memory_count.h"
#include "core/cpu/vec_math.h"

namespace rt::flash {

// ---------------------------------------------------------------- tile GEMMs
// Y (M,N) = [Y +] A (M,K) B (K,N). A(r,t) is at a[r*a_rs + t*a_ts], so one kernel serves the three shapes of
// flash attention: A row-major (a_rs = lda, a_ts = 1: S = Q Kt, O += P V, dQ += dS K) and A transposed
// (a_rs = 1, a_ts = lda: dV += P^T dO, dK += dS^T Q). B and Y are row-major with leading dims ldb, ldy.
// Every implementation runs single-threaded (callers are inside an OpenMP parallel region).
struct TileGemmPortable {  // plain loops with `omp simd` (attention/cpu/flash_tile_gemm.cpp)
  static void run(int64_t M, int64_t N, int64_t K, const float* a, int64_t a_rs, int64_t a_ts, const float* b,
                  int64_t ldb, bool accumulate, float* y, int64_t ldy);
};
struct TileGemmAvx512 {  // register-blocked AVX-512 microkernels (flash_tile_gemm_avx512.cpp); portable without
  static void run(int64_t M, int64_t N, int64_t K, const float* a, int64_t a_rs, int64_t a_ts, const float* b,
                  int64_t ldb, bool accumulate, float* y, int64_t ldy);
  static bool compiled();  // false: this build has no AVX-512 and run() is TileGemmPortable::run
};
struct TileGemmBf16 {  // A and B rounded to bf16 (nearest even), fp32 sums (flash_tile_gemm_bf16.cpp): AMX tiles,
                       // else vdpbf16ps
  static void run(int64_t M, int64_t N, int64_t K, const float* a, int64_t a_rs, int64_t a_ts, const float* b,
                  int64_t ldb, bool accumulate, float* y, int64_t ldy);
  static bool native();  // false: no AVX512-BF16 (CPU or build); run() multiplies the rounded values in fp32
  static bool amx();     // native() and AMX-BF16 usable (CPU, build, and the kernel's permission): run() uses tiles
  // Faster than fp32 FMA on rounded values: AMX (Sapphire/Emerald Rapids: 2.1 TFLOP/s on one core against 164 for
  // FMA, bench/fma_peak), or vdpbf16ps on AMD (Zen 5 at 1.85x the FMA rate; Intel runs it at 0.5x). A fixed rule, not
  // a timing, so that a run and its resumption always take the same kernels.
  static bool preferred();
};
struct TileGemmOneDnn {  // rt::cpu::gemm (oneDNN sgemm; sequential when called inside a parallel region)
  static void run(int64_t M, int64_t N, int64_t K, const float* a, int64_t a_rs, int64_t a_ts, const float* b,
                  int64_t ldb, bool accumulate, float* y, int64_t ldy);
};

// ---------------------------------------------------------------- small helpers
inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }
constexpr float kNegInf = -std::numeric_limits<float>::infinity();
// Diagonal-crossing tiles run in blocks of this many query rows, each only up to the keys its last row sees
// (a 128 x 128 diagonal tile then costs 5/8 of a full one).
constexpr int64_t kDiagRows = 32;

// A 64-byte aligned float buffer (uninitialised), for tiles and per-thread accumulators.
class AlignedBuf {
 public:
  AlignedBuf() = default;
  explicit AlignedBuf(int64_t n)
      : p_(static_cast<float*>(
            std::aligned_alloc(64, static_cast<size_t>(round_up(std::max<int64_t>(n, 16) * 4, 64))))) {
    RT_CHECK(p_ != nullptr, "flash attention: out of memory for " + std::to_string(n) + " floats");
    bytes_.bytes = round_up(std::max<int64_t>(n, 16) * 4, 64);
    memory_count_add(bytes_.bytes);
  }
  float* get() const { return p_.get(); }

 private:
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  struct Counted {  // gives the bytes back to memory_count with the buffer; moves leave 0 behind
    int64_t bytes = 0;
    Counted() = default;
    Counted(Counted&& o) noexcept : bytes(std::exchange(o.bytes, 0)) {}
    Counted& operator=(Counted&& o) noexcept {
      if (this != &o) {
        if (bytes) memory_count_add(-bytes);
        bytes = std::exchange(o.bytes, 0);
      }
      return *this;
    }
    ~Counted() {
      if (bytes) memory_count_add(-bytes);
    }
  };
  std::unique_ptr<float, Free> p_;
  Counted bytes_;
};

// Grow-only scratch buffers kept across kernel calls, one per slot: the large per-call arrays (packed K/V,
// head-major Q/dO, per-thread dQ) would otherwise come fresh from mmap on every call and pay a page fault and a
// page clear per 4 KiB (~4% of a 4k-token forward+backward). Not thread-safe: slots are taken by the thread that
// calls the kernel, or inside `omp single`. The memory stays O(T*D) of the largest call so far.
enum WorkspaceSlot : int { kSlotKt, kSlotV, kSlotQ, kSlotDout, kSlotDq0 /* + thread id */ };
float* workspace(int slot, int64_t n);

// Default tile edge (query rows = keys per tile), measured on 2 Zen 5 cores (fwd+bwd, causal, H=8, D=64/128):
// 64 x 64 tiles are fastest up to 2k tokens (finer-grained work, less of the diagonal), 128 x 128 beyond (half the
// passes over Q/dO and K/V: at 16k tokens, 335-355 GFLOP/s against 270-305).
inline int64_t default_block(const AttentionProblem& p) { return std::max(p.Tq, p.Tk) <= 2048 ? 64 : 128; }

// Tile GEMM for FlashGemm::kAuto, measured on 2 cores (T = 4096, H = 8, causal, fwd+bwd; docs/attention.md): our AVX-512
// microkernels at D < 128 (D = 64: 175 against oneDNN's 167 GFLOP/s), oneDNN's sgemm at D >= 128 (173 against 162)
// and wherever this build has no AVX-512 (the portable loops reach a third of either).
inline bool default_gemm_is_onednn(const AttentionProblem& p) { return !TileGemmAvx512::compiled() || p.D >= 128; }

// The tile GEMM a flash call runs: the options' choice, else with bf16 inputs the bf16 microkernels where their
// instruction beats fp32 FMA (TileGemmBf16::preferred), else the fastest fp32 one for the head dim (with bf16 inputs
// the drivers have rounded its operands, so its exact products are the bf16 products).
inline FlashGemm gemm_for(const FlashOptions& opt, const AttentionProblem& p) {
  if (opt.gemm != FlashGemm::kAuto) return opt.gemm;
  if (p.bf16_inputs && TileGemmBf16::preferred()) return FlashGemm::kBf16;
  return default_gemm_is_onednn(p) ? FlashGemm::kOneDnn : FlashGemm::kAvx512;
}

inline void check_problem(const AttentionProblem& p) {
  RT_CHECK(p.Hq > 0 && p.Hk > 0 && p.Hq % p.Hk == 0,
           "flash attention heads Hq=" + std::to_string(p.Hq) + " Hk=" + std::to_string(p.Hk));
  RT_CHECK(p.D > 0 && p.Tq >= 0 && p.Tk >= 0 && p.scale > 0, "flash attention problem sizes");
}

// Number of keys of the block visible to query row i: a prefix [0, n) of the keys (all of them if not causal).
inline int64_t visible_keys(const AttentionProblem& p, int64_t i) {
  if (!p.causal) return p.Tk;
  return std::clamp<int64_t>(p.q_offset + i - p.k_offset + 1, 0, p.Tk);
}

// Document masking (AttentionProblem::q_doc_start) over query rows [i, i + rows): the smallest and the largest first
// visible key of a row, as key indices of the block clamped to [0, Tk]. No row sees a key before `lo_min`; keys at or
// past `lo_max` are in every row's document. Both 0 without document masking.
struct DocRange {
  int64_t lo_min = 0, lo_max = 0;
};
inline DocRange doc_range(const AttentionProblem& p, int64_t i, int64_t rows) {
  if (p.q_doc_start == nullptr || rows <= 0) return {};
  DocRange r{p.Tk, 0};
  for (int64_t t = i; t < i + rows; ++t) {
    const int64_t first = std::clamp<int64_t>(p.q_doc_start[t] - p.k_offset, 0, p.Tk);
    r.lo_min = std::min(r.lo_min, first);
    r.lo_max = std::max(r.lo_max, first);
  }
  return r;
}

// A tile x (rows, ldx) of query rows [i, i + rows) against keys [j0, j0 + n) of the block: `value` where the key
// lies before the row's document. The forward sets the scores to -inf (P = 0); the backward zeroes P and dS after the
// softmax gradient (a row that sees no key of the block has lse = -inf, so its P must not be recomputed from it).
inline void mask_documents(const AttentionProblem& p, int64_t i, int64_t rows, int64_t j0, int64_t n, float* x,
                           int64_t ldx, float value) {
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t cut = std::clamp<int64_t>(p.q_doc_start[i + r] - p.k_offset - j0, 0, n);
    std::fill(x + r * ldx, x + r * ldx + cut, value);
  }
}

// kt (D, ldkt) = x (n, D)^T with row stride ldx; columns [n, ldkt) are zero.
inline void pack_transposed(const float* x, int64_t ldx, int64_t n, int64_t D, float* kt, int64_t ldkt) {
  for (int64_t d = 0; d < D; ++d) {
    float* row = kt + d * ldkt;
    for (int64_t j = 0; j < n; ++j) row[j] = x[j * ldx + d];
    for (int64_t j = n; j < ldkt; ++j) row[j] = 0.f;
  }
}

// y (n, D) contiguous = rows of x (n, D) with row stride ldx.
inline void pack_rows(const float* x, int64_t ldx, int64_t n, int64_t D, float* y) {
  for (int64_t j = 0; j < n; ++j) std::memcpy(y + j * D, x + j * ldx, static_cast<size_t>(D) * sizeof(float));
}

// x (n) rounded to bf16 in place (nearest even), kept as fp32: what a bf16 operand holds. Branch-free (the compiler
// vectorises it); NaN inputs are not preserved, as no finite run produces them.
inline void round_bf16(float* x, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    uint32_t u;
    std::memcpy(&u, &x[i], sizeof u);
    u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    std::memcpy(&x[i], &u, sizeof u);
  }
}
// Visible prefix of tile row i: keys [0, clamp(diag + i, 0, bk)) where diag = q_offset + i0 - k_offset - j0 + 1.
inline int64_t row_visible(int64_t diag, int64_t i, int64_t bk) { return std::clamp<int64_t>(diag + i, 0, bk); }

// ---------------------------------------------------------------- row passes, portable (`omp simd` loops)
// The running row sum of the forward is kept as kSumLanes partial sums per row (l: (bq, kSumLanes)), so a
// vector implementation adds whole vectors per tile and reduces once at the end; row_sum() reduces one row.
constexpr int64_t kSumLanes = 16;

struct RowsPortable {
  // Online-softmax step for one tile of scores s (bq, lds), keys [0, bk): s -> P = exp(s - m_new) (0 where
  // masked); running max m (bq) and sum l (bq, kSumLanes) updated; alpha (bq) = exp(m_old - m_new), the factor
  // the output accumulator must be rescaled by. kMasked: row i sees only its prefix row_visible(diag, i, bk);
  // rows that saw no key yet keep m = -inf. Columns [bk, round_up(bk, 16)) of s may be overwritten.
  // kBf16: the scores come unscaled (s *= score_scale first) and P is stored rounded to bf16, as it enters P V;
  // the running sums add the unrounded P.
  template <bool kMasked, bool kBf16 = false>
  static void softmax_online(int64_t bq, int64_t bk, int64_t diag, float* s, int64_t lds, float* m, float* l,
                             float* alpha, float score_scale = 1.f) {
    for (int64_t i = 0; i < bq; ++i) {
      float* si = s + i * lds;
      const int64_t n = kMasked ? row_visible(diag, i, bk) : bk;
      if constexpr (kBf16)
        for (int64_t j = 0; j < n; ++j) si[j] *= score_scale;
      float mx = kNegInf;
#pragma omp simd reduction(max : mx)
      for (int64_t j = 0; j < n; ++j) mx = si[j] > mx ? si[j] : mx;
      const float m_new = std::max(m[i], mx);
      if (kMasked && m_new == kNegInf) {  // no key seen so far: nothing to add, nothing to rescale
        for (int64_t j = 0; j < bk; ++j) si[j] = 0.f;
        alpha[i] = 1.f;
        continue;
      }
      float sum = 0.f;
#pragma omp simd reduction(+ : sum)
      for (int64_t j = 0; j < n; ++j) {
        const float e = cpu::exp_fast(si[j] - m_new);
        si[j] = kBf16 ? bf16_round(e) : e;
        sum += e;
      }
      if (kMasked)
        for (int64_t j = n; j < bk; ++j) si[j] = 0.f;
      alpha[i] = cpu::exp_fast(m[i] - m_new);  // m_old = -inf -> 0
      l[i * kSumLanes] = l[i * kSumLanes] * alpha[i] + sum;
      m[i] = m_new;
    }
  }

  static float row_sum(const float* li) {
    float s = 0.f;
    for (int64_t c = 0; c < kSumLanes; ++c) s += li[c];
    return s;
  }

  // acc (bq, D) rows *= alpha.
  static void rescale_rows(int64_t bq, int64_t D, const float* alpha, float* acc) {
    for (int64_t i = 0; i < bq; ++i) {
      const float a = alpha[i];
      float* r = acc + i * D;
#pragma omp simd
      for (int64_t d = 0; d < D; ++d) r[d] *= a;
    }
  }

  // Backward of one tile. s (bq, ld): raw scores Q K^T -> P = exp(scale*s - lse); dp (bq, ld): dO V^T ->
  // dS' = scale * P * (dP - delta) (the softmax scale of dQ and dK folded in); lse, delta: (bq) of this tile.
  // Masked entries get P = dS' = 0. Columns [bk, round_up(bk, 16)) may be overwritten.
  // kBf16: P and dS' stored rounded to bf16, as they enter their products.
  template <bool kMasked, bool kBf16 = false>
  static void softmax_grad(int64_t bq, int64_t bk, int64_t diag, float scale, const float* lse, const float* delta,
                           float* s, float* dp, int64_t ld) {
    for (int64_t i = 0; i < bq; ++i) {
      float* si = s + i * ld;
      float* dpi = dp + i * ld;
      const int64_t n = kMasked ? row_visible(diag, i, bk) : bk;
      const float li = lse[i], di = delta[i];
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) {
        const float pij = cpu::exp_fast(scale * si[j] - li), dsij = scale * pij * (dpi[j] - di);
        si[j] = kBf16 ? bf16_round(pij) : pij;
        dpi[j] = kBf16 ? bf16_round(dsij) : dsij;
      }
      if (kMasked)
        for (int64_t j = n; j < bk; ++j) si[j] = dpi[j] = 0.f;
    }
  }
};

// The same row passes with AVX-512 intrinsics (attention/cpu/flash_rows_avx512.cpp; RowsPortable's code in builds
// without AVX-512). Not inline: GCC 12 warns falsely about its intrinsics when inlined into OpenMP regions.
struct RowsAvx512 {
  template <bool kMasked, bool kBf16 = false>
  static void softmax_online(int64_t bq, int64_t bk, int64_t diag, float* s, int64_t lds, float* m, float* l,
                             float* alpha, float score_scale = 1.f);
  static float row_sum(const float* li);
  static void rescale_rows(int64_t bq, int64_t D, const float* alpha, float* acc) {
    RowsPortable::rescale_rows(bq, D, alpha, acc);
  }
  template <bool kMasked, bool kBf16 = false>
  static void softmax_grad(int64_t bq, int64_t bk, int64_t diag, float scale, const float* lse, const float* delta,
                           float* s, float* dp, int64_t ld);
};

// The kernels a flash driver runs: a tile GEMM and the row passes.
template <class Gemm, class Rows>
struct Kernels {
  using G = Gemm;
  using R = Rows;
};

}  // namespace rt::flash
