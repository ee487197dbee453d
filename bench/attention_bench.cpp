// Benchmark: CPU flash attention forward and forward+backward GFLOP/s, checked against double precision first.
//   attention_bench --seq 4096 --heads 8 --kv-heads 8 --head-dim 64 --causal 1 --threads 2 --reps 5
//
// FLOP convention (FlashAttention, as bench/peer torch_sdpa_ref.py): forward 4*T^2*D*H, halved if causal; the
// backward counts 2.5x the forward, so forward+backward is 3.5x. Timed: median of --reps runs after one warm-up.
//
// Checks, before any speed is printed (exit 1 and FAIL on a mismatch):
//   1. the timed problem: o and lse of 32 rows spread over T (first and last included), all heads; delta and dq of
//      the same rows; dk and dv of the same indices as keys, all key/value heads. The backward rows are computed from
//      the kernel's own lse and delta, which are the backward's inputs (each is checked on its own);
//   2. a small problem (T = 259, partial tiles of any power-of-two size) with the same heads: every row and key.
// Against what: each quantity is computed twice on the checked rows, in double (the reference) and as a naive fp32
// loop (float accumulation in key order, std::exp). The tolerance is DESIGN.md's: err(kernel) <= 2 * err(naive) +
// 4 eps, err(x) = ||x - ref||_2 / ||ref||_2 over the checked entries (normwise, see tests/attention/attention_test.cpp
// for why not max-norm). This is the fp32 error model measured instead of guessed: a sum of n rounded terms in
// float has a random-walk error ~ eps * sqrt(n) relative to the sum of magnitudes (n = T keys for o, lse, dq, dk,
// dv; D for scores and delta), plus ~eps * |s| per exp argument; the naive loop pays exactly these with sequential
// sums, so its error grows as eps * sqrt(T) and so does the tolerance (~1e-6..1e-5 at T = 1k..16k, D = 64), while a
// tiled kernel sums in blocks and does better. A wrong key, tile, mask or rescale moves a checked entry by O(1/n)
// of its magnitude, above the tolerance at these sizes for the rows where it matters (early rows see few keys).
#include <omp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "attention/attention_kernels.h"
#include "attention/cpu/flash_options.h"
#include "core/bf16.h"
#include "core/cpu/cpu_features.h"
#include "core/timer.h"

namespace {

using rt::AttentionProblem;
using VecF = std::vector<float>;
using VecD = std::vector<double>;

constexpr double kFloor = 4 * FLT_EPSILON;  // a few float ulps, so no check has a zero tolerance
constexpr int64_t kSmallT = 259;            // the all-rows check: not a multiple of 2, 64, 128, 256

// The tensors of one problem. q, o, dout, dq: (T, H, D); k, v, dk, dv: (T, Hk, D); lse, delta: (H, T).
struct Buffers {
  VecF q, k, v, dout, o, lse, delta, dq, dk, dv;
};

// Uniform on [-sqrt(3), sqrt(3)) (unit variance), counter-based (splitmix64 of seed and index): the same values
// whatever the thread count, and fast enough for 10^8 entries.
void fill_random(VecF& x, uint64_t seed) {
  const int64_t n = static_cast<int64_t>(x.size());
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    uint64_t z = seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(i) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    const double u = static_cast<double>(z >> 11) * 0x1.0p-53;  // [0, 1)
    x[static_cast<size_t>(i)] = static_cast<float>((2 * u - 1) * std::sqrt(3.0));
  }
}

Buffers make_buffers(const AttentionProblem& p, uint64_t seed) {
  const auto nq = static_cast<size_t>(p.Tq * p.Hq * p.D), nk = static_cast<size_t>(p.Tk * p.Hk * p.D);
  const auto nl = static_cast<size_t>(p.Hq * p.Tq);
  Buffers b{VecF(nq), VecF(nk), VecF(nk), VecF(nq), VecF(nq), VecF(nl), VecF(nl), VecF(nq), VecF(nk), VecF(nk)};
  fill_random(b.q, seed);
  fill_random(b.k, seed + 1);
  fill_random(b.v, seed + 2);
  fill_random(b.dout, seed + 3);
  return b;
}

// The tile GEMM and tile size the kernels run with (--gemm, --block): the default is what the model uses.
rt::FlashOptions g_options;

void run_forward(const AttentionProblem& p, Buffers& b) {
  rt::attention_flash_forward_with(g_options, p, b.q.data(), b.k.data(), b.v.data(), b.o.data(), b.lse.data());
}

// Forward, delta, backward into zeroed dq, dk, dv: one training step's attention.
void run_forward_backward(const AttentionProblem& p, Buffers& b) {
  run_forward(p, b);
  rt::attention_delta(p, b.o.data(), b.dout.data(), b.delta.data());
  std::fill(b.dq.begin(), b.dq.end(), 0.f);
  std::fill(b.dk.begin(), b.dk.end(), 0.f);
  std::fill(b.dv.begin(), b.dv.end(), 0.f);
  rt::attention_flash_backward_with(g_options, p, b.q.data(), b.k.data(), b.v.data(), b.dout.data(), b.lse.data(), b.delta.data(),
                               b.dq.data(), b.dk.data(), b.dv.data());
}

// Keys [0, n) of the block are visible to query row i (causal: a prefix); n as in the reference kernels.
int64_t visible_keys(const AttentionProblem& p, int64_t i) {
  if (!p.causal) return p.Tk;
  const int64_t n = p.q_offset + i - p.k_offset + 1;
  return std::clamp<int64_t>(n, 0, p.Tk);
}

// First query row that sees key j (causal), Tq when none does.
int64_t first_row(const AttentionProblem& p, int64_t j) {
  if (!p.causal) return 0;
  return std::clamp<int64_t>(p.k_offset + j - p.q_offset, 0, p.Tq);
}

// With --precision bf16 the naive float version rounds where the bf16 kernels round (q, k, v, dout into their
// products, P and dS as they enter theirs): the naive same-precision error model. The double reference never rounds.
bool g_bf16 = false;
template <class A>
A op(A x) {
  if constexpr (std::is_same_v<A, float>)
    if (g_bf16) return rt::bf16_round(x);
  return x;
}

// Naive attention on chosen rows, in precision A (double: the reference; float: the naive fp32 error model).
// o_rows: (rows, H, D), lse_rows: (rows, H).
template <class A>
void forward_rows(const AttentionProblem& p, const Buffers& b, const std::vector<int64_t>& rows, std::vector<A>& o_rows,
                  std::vector<A>& lse_rows) {
  const int64_t H = p.Hq, D = p.D, group = p.Hq / p.Hk, R = static_cast<int64_t>(rows.size());
  o_rows.assign(static_cast<size_t>(R * H * D), A(0));
  lse_rows.assign(static_cast<size_t>(R * H), A(0));
#pragma omp parallel for collapse(2) schedule(dynamic)
  for (int64_t r = 0; r < R; ++r) {
    for (int64_t h = 0; h < H; ++h) {
      const int64_t i = rows[static_cast<size_t>(r)], n = visible_keys(p, i), kv = h / group;
      const float* qi = &b.q[static_cast<size_t>((i * H + h) * D)];
      A* oi = &o_rows[static_cast<size_t>((r * H + h) * D)];
      if (n == 0) {
        lse_rows[static_cast<size_t>(r * H + h)] = -std::numeric_limits<A>::infinity();
        continue;
      }
      std::vector<A> s(static_cast<size_t>(n));
      A mx = -std::numeric_limits<A>::infinity();
      for (int64_t j = 0; j < n; ++j) {
        const float* kj = &b.k[static_cast<size_t>((j * p.Hk + kv) * D)];
        A dot = 0;
        for (int64_t d = 0; d < D; ++d) dot += op(A(qi[d])) * op(A(kj[d]));
        s[static_cast<size_t>(j)] = A(p.scale) * dot;
        mx = std::max(mx, s[static_cast<size_t>(j)]);
      }
      A sum = 0;
      for (int64_t j = 0; j < n; ++j) {
        const A e = std::exp(s[static_cast<size_t>(j)] - mx);
        sum += e;
        const float* vj = &b.v[static_cast<size_t>((j * p.Hk + kv) * D)];
        for (int64_t d = 0; d < D; ++d) oi[d] += op(e) * op(A(vj[d]));
      }
      for (int64_t d = 0; d < D; ++d) oi[d] /= sum;
      lse_rows[static_cast<size_t>(r * H + h)] = mx + std::log(sum);
    }
  }
}

// delta (rows, H) = rowsum(dout * o) from the kernel's o.
template <class A>
void delta_rows(const AttentionProblem& p, const Buffers& b, const std::vector<int64_t>& rows, std::vector<A>& delta) {
  const int64_t H = p.Hq, D = p.D, R = static_cast<int64_t>(rows.size());
  delta.assign(static_cast<size_t>(R * H), A(0));
  for (int64_t r = 0; r < R; ++r) {
    for (int64_t h = 0; h < H; ++h) {
      const size_t at = static_cast<size_t>((rows[static_cast<size_t>(r)] * H + h) * D);
      A d = 0;
      for (int64_t c = 0; c < D; ++c) d += A(b.dout[at + c]) * A(b.o[at + c]);
      delta[static_cast<size_t>(r * H + h)] = d;
    }
  }
}

// dS_ij = P_ij * (dP_ij - delta_i) with P_ij = exp(scale q_i.k_j - lse_i), dP_ij = dout_i.v_j, from the kernel's lse
// and delta (the backward's inputs). Sets p_ij too.
template <class A>
A dscore(const AttentionProblem& p, const Buffers& b, int64_t i, int64_t h, int64_t j, A& p_ij) {
  const int64_t D = p.D, kv = h / (p.Hq / p.Hk);
  const float* qi = &b.q[static_cast<size_t>((i * p.Hq + h) * D)];
  const float* doi = &b.dout[static_cast<size_t>((i * p.Hq + h) * D)];
  const float* kj = &b.k[static_cast<size_t>((j * p.Hk + kv) * D)];
  const float* vj = &b.v[static_cast<size_t>((j * p.Hk + kv) * D)];
  A s = 0, dp = 0;
  for (int64_t d = 0; d < D; ++d) {
    s += op(A(qi[d])) * op(A(kj[d]));
    dp += op(A(doi[d])) * op(A(vj[d]));
  }
  const size_t at = static_cast<size_t>(h * p.Tq + i);
  p_ij = std::exp(A(p.scale) * s - A(b.lse[at]));
  return p_ij * (dp - A(b.delta[at]));
}

// dq of chosen query rows: (rows, H, D).
template <class A>
void dq_rows(const AttentionProblem& p, const Buffers& b, const std::vector<int64_t>& rows, std::vector<A>& dq) {
  const int64_t H = p.Hq, D = p.D, group = p.Hq / p.Hk, R = static_cast<int64_t>(rows.size());
  dq.assign(static_cast<size_t>(R * H * D), A(0));
#pragma omp parallel for collapse(2) schedule(dynamic)
  for (int64_t r = 0; r < R; ++r) {
    for (int64_t h = 0; h < H; ++h) {
      const int64_t i = rows[static_cast<size_t>(r)], n = visible_keys(p, i), kv = h / group;
      A* g = &dq[static_cast<size_t>((r * H + h) * D)];
      for (int64_t j = 0; j < n; ++j) {
        A pij;
        const A ds = op(A(p.scale) * dscore(p, b, i, h, j, pij));
        const float* kj = &b.k[static_cast<size_t>((j * p.Hk + kv) * D)];
        for (int64_t d = 0; d < D; ++d) g[d] += ds * op(A(kj[d]));
      }
    }
  }
}

// dk, dv of chosen keys, summed over the query heads that share each key/value head: (keys, Hk, D).
template <class A>
void dkdv_keys(const AttentionProblem& p, const Buffers& b, const std::vector<int64_t>& keys, std::vector<A>& dk,
               std::vector<A>& dv) {
  const int64_t Hk = p.Hk, D = p.D, group = p.Hq / p.Hk, K = static_cast<int64_t>(keys.size());
  dk.assign(static_cast<size_t>(K * Hk * D), A(0));
  dv.assign(static_cast<size_t>(K * Hk * D), A(0));
#pragma omp parallel for collapse(2) schedule(dynamic)
  for (int64_t r = 0; r < K; ++r) {
    for (int64_t kv = 0; kv < Hk; ++kv) {
      const int64_t j = keys[static_cast<size_t>(r)];
      A* gk = &dk[static_cast<size_t>((r * Hk + kv) * D)];
      A* gv = &dv[static_cast<size_t>((r * Hk + kv) * D)];
      for (int64_t h = kv * group; h < (kv + 1) * group; ++h) {
        for (int64_t i = first_row(p, j); i < p.Tq; ++i) {
          A pij;
          const A ds = op(A(p.scale) * dscore(p, b, i, h, j, pij));
          const float* qi = &b.q[static_cast<size_t>((i * p.Hq + h) * D)];
          const float* doi = &b.dout[static_cast<size_t>((i * p.Hq + h) * D)];
          const A pr = op(pij);
          for (int64_t d = 0; d < D; ++d) {
            gk[d] += ds * op(A(qi[d]));
            gv[d] += pr * op(A(doi[d]));
          }
        }
      }
    }
  }
}

// The kernel's values of chosen rows (or keys) of a (T, heads, D) tensor, or of chosen columns of an (H, T) one.
VecF gather_rows(const VecF& x, const std::vector<int64_t>& rows, int64_t width) {
  VecF out;
  for (int64_t i : rows) out.insert(out.end(), x.begin() + i * width, x.begin() + (i + 1) * width);
  return out;
}
VecF gather_columns(const VecF& x, const std::vector<int64_t>& rows, int64_t H, int64_t T) {
  VecF out;
  for (int64_t i : rows)
    for (int64_t h = 0; h < H; ++h) out.push_back(x[static_cast<size_t>(h * T + i)]);
  return out;
}

// ||got - ref||_2 / ||ref||_2 over finite ref entries; a non-finite ref (lse = -inf) must be matched exactly.
template <class G>
double rel_err(const std::vector<G>& got, const VecD& ref) {
  if (got.size() != ref.size()) return std::numeric_limits<double>::infinity();
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = static_cast<double>(got[i]), r = ref[i];
    if (!std::isfinite(r) || !std::isfinite(g)) {
      if (g != r) return std::numeric_limits<double>::infinity();
      continue;
    }
    num += (g - r) * (g - r);
    den += r * r;
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

// One check line; true when err(kernel) <= 2 * err(naive same-precision) + kFloor.
bool check(const std::string& what, const VecF& kernel, const VecF& naive, const VecD& ref) {
  const double ek = rel_err(kernel, ref), en = rel_err(naive, ref), tol = 2 * en + kFloor;
  const bool ok = ek <= tol;
  std::printf("check %-34s error %.2e  naive %s %.2e  tolerance %.2e  %s\n", what.c_str(), ek, g_bf16 ? "bf16" : "fp32",
              en, tol, ok ? "ok" : "MISMATCH");
  return ok;
}

// Runs the problem once (forward, delta, backward) and checks the chosen rows and keys; true when all match.
bool check_problem(const AttentionProblem& p, Buffers& b, const std::vector<int64_t>& rows, const std::string& tag) {
  run_forward_backward(p, b);
  VecD o_d, lse_d, delta_d, dq_d, dk_d, dv_d;
  VecF o_f, lse_f, delta_f, dq_f, dk_f, dv_f;
  forward_rows(p, b, rows, o_d, lse_d);
  forward_rows(p, b, rows, o_f, lse_f);
  delta_rows(p, b, rows, delta_d);
  delta_rows(p, b, rows, delta_f);
  dq_rows(p, b, rows, dq_d);
  dq_rows(p, b, rows, dq_f);
  dkdv_keys(p, b, rows, dk_d, dv_d);
  dkdv_keys(p, b, rows, dk_f, dv_f);
  const int64_t wq = p.Hq * p.D, wk = p.Hk * p.D;
  const std::string r = std::to_string(rows.size()) + " rows";
  bool ok = true;
  ok &= check(tag + " o (" + r + ")", gather_rows(b.o, rows, wq), o_f, o_d);
  ok &= check(tag + " lse (" + r + ")", gather_columns(b.lse, rows, p.Hq, p.Tq), lse_f, lse_d);
  ok &= check(tag + " delta (" + r + ")", gather_columns(b.delta, rows, p.Hq, p.Tq), delta_f, delta_d);
  ok &= check(tag + " dq (" + r + ")", gather_rows(b.dq, rows, wq), dq_f, dq_d);
  ok &= check(tag + " dk (" + std::to_string(rows.size()) + " keys)", gather_rows(b.dk, rows, wk), dk_f, dk_d);
  ok &= check(tag + " dv (" + std::to_string(rows.size()) + " keys)", gather_rows(b.dv, rows, wk), dv_f, dv_d);
  return ok;
}

// 32 rows spread over [0, T): first, second and last, the rest evenly spaced with an offset that varies from row
// to row, so the checked rows fall at different positions inside the kernel's tiles. All rows when T <= 32.
std::vector<int64_t> sample_rows(int64_t T) {
  std::vector<int64_t> rows;
  if (T <= 32) {
    for (int64_t i = 0; i < T; ++i) rows.push_back(i);
    return rows;
  }
  rows = {0, 1, T - 1};
  for (int64_t k = 1; rows.size() < 32; ++k) {
    const int64_t i = k * T / 30 + (k * 37) % 29 - 14;
    if (i > 1 && i < T - 1 && std::find(rows.begin(), rows.end(), i) == rows.end()) rows.push_back(i);
    if (k > 1000) break;
  }
  std::sort(rows.begin(), rows.end());
  return rows;
}

double median_ms(std::vector<double> t) {
  std::sort(t.begin(), t.end());
  return t[t.size() / 2] * 1e3;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ringtrain CPU flash attention benchmark"};
  int64_t seq = 4096, heads = 8, kv_heads = 0, head_dim = 64, threads = 2, reps = 5;
  int causal = 1;
  double peak = 441.0;
  app.add_option("--seq", seq, "sequence length T")->check(CLI::PositiveNumber);
  app.add_option("--heads", heads, "query heads")->check(CLI::PositiveNumber);
  app.add_option("--kv-heads", kv_heads, "key/value heads (0 = heads)")->check(CLI::NonNegativeNumber);
  app.add_option("--head-dim", head_dim, "head dimension D")->check(CLI::PositiveNumber);
  app.add_option("--causal", causal, "1 = causal mask, 0 = none")->check(CLI::Range(0, 1));
  app.add_option("--threads", threads, "OpenMP threads")->check(CLI::PositiveNumber);
  app.add_option("--reps", reps, "timed runs (after one warm-up)")->check(CLI::PositiveNumber);
  app.add_option("--peak-gflops", peak, "fp32 peak of the cores used")->check(CLI::PositiveNumber);
  std::string gemm = "auto", precision = "fp32";
  int64_t block = 0;
  app.add_option("--precision", precision, "fp32 | bf16 (bf16 Q/K/V/dO, P and dS into the tile products, as the model)")
      ->check(CLI::IsMember({"fp32", "bf16"}));
  app.add_option("--gemm", gemm,
                 "tile GEMM: auto (the model's) | avx512 (our microkernels) | portable | onednn | bf16 (bf16 inputs)")
      ->check(CLI::IsMember({"auto", "avx512", "portable", "onednn", "bf16"}));
  app.add_option("--block", block, "tile edge, query rows = keys (multiple of 16; 0 = the default)")
      ->check(CLI::NonNegativeNumber);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help: 0; a bad flag is a user mistake: exit 2 (DESIGN.md)
  }
  if (kv_heads == 0) kv_heads = heads;
  if (heads % kv_heads != 0) {
    std::fprintf(stderr, "attention_bench: --heads %ld is not a multiple of --kv-heads %ld\n", heads, kv_heads);
    return 2;
  }
  omp_set_num_threads(static_cast<int>(threads));
  g_options.gemm = gemm == "avx512"     ? rt::FlashGemm::kAvx512
                   : gemm == "portable" ? rt::FlashGemm::kPortable
                   : gemm == "onednn"   ? rt::FlashGemm::kOneDnn
                   : gemm == "bf16"     ? rt::FlashGemm::kBf16
                                        : rt::FlashGemm::kAuto;
  if (block % 16 != 0) {
    std::fprintf(stderr, "attention_bench: --block %ld is not a multiple of 16\n", block);
    return 2;
  }
  g_options.block_q = g_options.block_k = block;

  AttentionProblem p;
  p.Tq = p.Tk = seq;
  p.Hq = heads;
  p.Hk = kv_heads;
  p.D = head_dim;
  p.causal = causal != 0;
  p.scale = 1.f / std::sqrt(static_cast<float>(head_dim));
  p.bf16_inputs = precision == "bf16";
  g_bf16 = p.bf16_inputs || gemm == "bf16";
  const std::string shape = "T=" + std::to_string(seq) + " H=" + std::to_string(heads) + " Hkv=" +
                            std::to_string(kv_heads) + " d=" + std::to_string(head_dim) + " causal=" +
                            std::to_string(causal) + " threads=" + std::to_string(threads) +
                            (gemm == "auto" ? "" : " gemm=" + gemm) + (block ? " block=" + std::to_string(block) : "") +
                            (g_bf16 ? " precision=bf16 (" +
                                          (rt::flash_bf16_amx()      ? std::string("AMX tiles")
                                           : rt::flash_bf16_native() ? std::string("vdpbf16ps")
                                                                     : std::string("emulated: no bf16 instructions")) +
                                          ")"
                                    : "");

  // Checks first: the timed problem on 32 rows (this run is also the warm-up), a small one on every row.
  Buffers b = make_buffers(p, 1);
  bool ok = check_problem(p, b, sample_rows(seq), "T=" + std::to_string(seq));
  if (seq > kSmallT) {
    AttentionProblem ps = p;
    ps.Tq = ps.Tk = kSmallT;
    Buffers bs = make_buffers(ps, 2);
    std::vector<int64_t> all(static_cast<size_t>(kSmallT));
    for (int64_t i = 0; i < kSmallT; ++i) all[static_cast<size_t>(i)] = i;
    ok &= check_problem(ps, bs, all, "T=" + std::to_string(kSmallT));
  }
  if (!ok) {
    std::printf("FAIL: flash attention %s differs from the double-precision reference beyond 2x the naive %s "
                "error; no speed reported\n", shape.c_str(), g_bf16 ? "bf16" : "fp32");
    return 1;
  }

  std::vector<double> t_fwd, t_fb;
  for (int64_t r = 0; r < reps; ++r) {
    rt::Timer timer;
    run_forward(p, b);
    t_fwd.push_back(timer.seconds());
  }
  for (int64_t r = 0; r < reps; ++r) {
    rt::Timer timer;
    run_forward_backward(p, b);
    t_fb.push_back(timer.seconds());
  }
  const double fwd_flop = 4.0 * static_cast<double>(seq) * static_cast<double>(seq) * static_cast<double>(head_dim) *
                          static_cast<double>(heads) / (causal ? 2 : 1);
  const double ms_f = median_ms(t_fwd), ms_fb = median_ms(t_fb);
  const double gf_f = fwd_flop / ms_f / 1e6, gf_fb = 3.5 * fwd_flop / ms_fb / 1e6;
  std::printf("ringtrain flash %s fwd_ms=%.2f fwd_gflops=%.1f fwd_peak=%.1f%% fwdbwd_ms=%.2f fwdbwd_gflops=%.1f "
              "fwdbwd_peak=%.1f%%\n",
              shape.c_str(), ms_f, gf_f, 100 * gf_f / peak, ms_fb, gf_fb, 100 * gf_fb / peak);
  std::printf("PASS: o, lse, delta, dq, dk, dv match double precision within 2x the naive %s error\n",
              g_bf16 ? "bf16" : "fp32");
  return 0;
}
