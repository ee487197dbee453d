// Reference attention on the CPU: per head and per block of queries, scores via GEMM, softmax, GEMM.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "attention/attention_kernels.h"
#include "core/check.h"
#include "core/cpu/kernels.h"
#include "core/cpu/vec_math.h"

namespace rt {
namespace {

constexpr int64_t kRowBlock = 128;

// Number of keys of the block visible to query row i (causal: a prefix of the keys).
int64_t visible_keys(const AttentionProblem& p, int64_t i) {
  if (!p.causal) return p.Tk;
  int64_t n = p.q_offset + i - p.k_offset + 1;
  return n < 0 ? 0 : (n > p.Tk ? p.Tk : n);
}

// First key of the block visible to query row i: 0, or with document masking the start of the row's document.
int64_t first_visible_key(const AttentionProblem& p, int64_t i) {
  if (p.q_doc_start == nullptr) return 0;
  const int64_t first = p.q_doc_start[i] - p.k_offset;
  return first < 0 ? 0 : (first > p.Tk ? p.Tk : first);
}

void check_problem(const AttentionProblem& p) {
  RT_CHECK(p.Hq > 0 && p.Hk > 0 && p.Hq % p.Hk == 0, "attention heads Hq=" + std::to_string(p.Hq) + " Hk=" + std::to_string(p.Hk));
  RT_CHECK(p.D > 0 && p.Tq >= 0 && p.Tk >= 0 && p.scale > 0, "attention problem sizes");
}

}  // namespace

void attention_reference_forward(const AttentionProblem& p, const float* q, const float* k, const float* v, float* o,
                                 float* lse) {
  check_problem(p);
  const int64_t group = p.Hq / p.Hk, ldq = p.Hq * p.D, ldk = p.Hk * p.D;
  const int64_t blocks = (p.Tq + kRowBlock - 1) / kRowBlock;
#pragma omp parallel
  {
    std::vector<float> s(static_cast<size_t>(kRowBlock * p.Tk));
#pragma omp for collapse(2) schedule(dynamic)
    for (int64_t h = 0; h < p.Hq; ++h) {
      for (int64_t b = 0; b < blocks; ++b) {
        const int64_t i0 = b * kRowBlock, rows = std::min(kRowBlock, p.Tq - i0);
        const int64_t kv = h / group;
        const int64_t nk = visible_keys(p, i0 + rows - 1);  // keys any row of the block can see
        float* oh = o + i0 * ldq + h * p.D;
        float* lh = lse + h * p.Tq + i0;
        if (nk == 0) {
          for (int64_t i = 0; i < rows; ++i) {
            for (int64_t d = 0; d < p.D; ++d) oh[i * ldq + d] = 0.f;
            lh[i] = -std::numeric_limits<float>::infinity();
          }
          continue;
        }
        // s (rows, nk) = scale * q_blk @ k^T
        cpu::gemm(false, true, rows, nk, p.D, p.scale, q + i0 * ldq + h * p.D, ldq, k + kv * p.D, ldk, 0.f, s.data(), nk);
        for (int64_t i = 0; i < rows; ++i) {
          float* si = s.data() + i * nk;
          const int64_t n = visible_keys(p, i0 + i), first = first_visible_key(p, i0 + i);  // keys [first, n)
          if (first >= n) {
            for (int64_t j = 0; j < nk; ++j) si[j] = 0.f;
            lh[i] = -std::numeric_limits<float>::infinity();
            continue;
          }
          float mx = si[first];
          for (int64_t j = first + 1; j < n; ++j) mx = si[j] > mx ? si[j] : mx;
          float sum = 0.f;
#pragma omp simd reduction(+ : sum)
          for (int64_t j = first; j < n; ++j) {
            si[j] = cpu::exp_fast(si[j] - mx);
            sum += si[j];
          }
          const float inv = 1.f / sum;
#pragma omp simd
          for (int64_t j = first; j < n; ++j) si[j] *= inv;
          for (int64_t j = 0; j < first; ++j) si[j] = 0.f;
          for (int64_t j = n; j < nk; ++j) si[j] = 0.f;
          lh[i] = mx + std::log(sum);
        }
        // o_blk (rows, D) = P @ v
        cpu::gemm(false, false, rows, p.D, nk, 1.f, s.data(), nk, v + kv * p.D, ldk, 0.f, oh, ldq);
      }
    }
  }
}

void attention_reference_backward(const AttentionProblem& p, const float* q, const float* k, const float* v,
                                  const float* o, const float* dout, const float* lse, float* dq, float* dk, float* dv) {
  check_problem(p);
  const int64_t group = p.Hq / p.Hk, ldq = p.Hq * p.D, ldk = p.Hk * p.D;
  const int64_t blocks = (p.Tq + kRowBlock - 1) / kRowBlock;
  // Threads own key/value heads, so the dk/dv of a head is written by one thread only.
#pragma omp parallel
  {
    std::vector<float> pm(static_cast<size_t>(kRowBlock * p.Tk)), dp(static_cast<size_t>(kRowBlock * p.Tk));
    std::vector<float> delta(kRowBlock);
#pragma omp for schedule(dynamic)
    for (int64_t kv = 0; kv < p.Hk; ++kv) {
      for (int64_t h = kv * group; h < (kv + 1) * group; ++h) {
        for (int64_t b = 0; b < blocks; ++b) {
          const int64_t i0 = b * kRowBlock, rows = std::min(kRowBlock, p.Tq - i0);
          const int64_t nk = visible_keys(p, i0 + rows - 1);
          if (nk == 0) continue;
          const float* qh = q + i0 * ldq + h * p.D;
          const float* oh = o + i0 * ldq + h * p.D;
          const float* doh = dout + i0 * ldq + h * p.D;
          const float* lh = lse + h * p.Tq + i0;
          // P (rows, nk) = exp(scale * q k^T - lse), zero where masked
          cpu::gemm(false, true, rows, nk, p.D, p.scale, qh, ldq, k + kv * p.D, ldk, 0.f, pm.data(), nk);
          for (int64_t i = 0; i < rows; ++i) {
            float* pi = pm.data() + i * nk;
            const int64_t n = visible_keys(p, i0 + i), first = first_visible_key(p, i0 + i);  // keys [first, n)
            const float l = lh[i];
            for (int64_t j = 0; j < std::min(first, n); ++j) pi[j] = 0.f;
#pragma omp simd
            for (int64_t j = first; j < n; ++j) pi[j] = cpu::exp_fast(pi[j] - l);
            for (int64_t j = std::max(first, n); j < nk; ++j) pi[j] = 0.f;
            float d = 0.f;
#pragma omp simd reduction(+ : d)
            for (int64_t c = 0; c < p.D; ++c) d += doh[i * ldq + c] * oh[i * ldq + c];
            delta[i] = d;
          }
          // dv (nk, D) += P^T @ dO
          cpu::gemm(true, false, nk, p.D, rows, 1.f, pm.data(), nk, doh, ldq, 1.f, dv + kv * p.D, ldk);
          // dP (rows, nk) = dO @ v^T
          cpu::gemm(false, true, rows, nk, p.D, 1.f, doh, ldq, v + kv * p.D, ldk, 0.f, dp.data(), nk);
          // dS = P * (dP - delta)
          for (int64_t i = 0; i < rows; ++i) {
            float* pi = pm.data() + i * nk;
            const float* dpi = dp.data() + i * nk;
            const float di = delta[i];
#pragma omp simd
            for (int64_t j = 0; j < nk; ++j) pi[j] = pi[j] * (dpi[j] - di);
          }
          // dq (rows, D) += scale * dS @ k ; dk (nk, D) += scale * dS^T @ q
          cpu::gemm(false, false, rows, p.D, nk, p.scale, pm.data(), nk, k + kv * p.D, ldk, 1.f, dq + i0 * ldq + h * p.D, ldq);
          cpu::gemm(true, false, nk, p.D, rows, p.scale, pm.data(), nk, qh, ldq, 1.f, dk + kv * p.D, ldk);
        }
      }
    }
  }
}

}  // namespace rt
