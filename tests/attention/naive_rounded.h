// Naive attention of one block pair in T, with a rounding applied where the bf16 kernels round (q, k, v, dout into
// their products; P and dS as they enter theirs): the "naive same-precision" version of the CUDA kernels and of the
// CPU flash kernels with bf16 inputs (AttentionProblem::bf16_inputs). Without rounding and in double, the reference.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "attention/attention_kernels.h"
#include "core/bf16.h"
#include "tests/test_numerics.h"

namespace rt {

// Round to the nearest bf16 (ties to even), as __float2bfloat16_rn and vcvtneps2bf16.
inline float bf16(float x) { return bf16_round(x); }

// ---------------------------------------------------------------- naive attention
template <class T>
struct Result {
  Vec<T> o, lse, dq, dk, dv;
};

// Forward and backward of one block pair, in T, with `round` applied where the CUDA kernels round. The backward
// uses this naive forward's own o and lse; delta = rowsum(dout * o) is not rounded (the kernels compute it in fp32).
template <class T, class Round>
inline Result<T> naive(const AttentionProblem& p, const VecF& q, const VecF& k, const VecF& v, const VecF& dout,
                       Round round) {
  const int64_t D = p.D, group = p.Hq / p.Hk;
  const T scale = static_cast<T>(p.scale);
  Result<T> r;
  r.o.assign(p.Tq * p.Hq * D, 0);
  r.lse.assign(p.Hq * p.Tq, 0);
  r.dq.assign(p.Tq * p.Hq * D, 0);
  r.dk.assign(p.Tk * p.Hk * D, 0);
  r.dv.assign(p.Tk * p.Hk * D, 0);
  auto Q = [&](int64_t i, int64_t h, int64_t d) { return static_cast<T>(round(q[(i * p.Hq + h) * D + d])); };
  auto K = [&](int64_t j, int64_t h, int64_t d) { return static_cast<T>(round(k[(j * p.Hk + h) * D + d])); };
  auto V = [&](int64_t j, int64_t h, int64_t d) { return static_cast<T>(round(v[(j * p.Hk + h) * D + d])); };
  auto dO = [&](int64_t i, int64_t h, int64_t d) { return static_cast<T>(round(dout[(i * p.Hq + h) * D + d])); };
  auto R = [&](T x) { return static_cast<T>(round(static_cast<float>(x))); };
  Vec<T> s(p.Tk), pr(p.Tk);
  for (int64_t h = 0; h < p.Hq; ++h) {
    const int64_t kh = h / group;
    for (int64_t i = 0; i < p.Tq; ++i) {
      // Visible keys [first, n): causal, and with document masking from the row's document start on.
      const int64_t n = p.causal ? std::clamp<int64_t>(p.q_offset + i - p.k_offset + 1, 0, p.Tk) : p.Tk;
      const int64_t first = p.q_doc_start ? std::clamp<int64_t>(p.q_doc_start[i] - p.k_offset, 0, p.Tk) : 0;
      if (first >= n) {
        r.lse[h * p.Tq + i] = -std::numeric_limits<T>::infinity();
        continue;
      }
      T m = -std::numeric_limits<T>::infinity(), l = 0;
      for (int64_t j = first; j < n; ++j) {
        T acc = 0;
        for (int64_t d = 0; d < D; ++d) acc += Q(i, h, d) * K(j, kh, d);
        s[j] = acc * scale;
        m = std::max(m, s[j]);
      }
      for (int64_t j = first; j < n; ++j) l += (pr[j] = std::exp(s[j] - m));
      for (int64_t d = 0; d < D; ++d) {
        T acc = 0;
        for (int64_t j = first; j < n; ++j) acc += R(pr[j]) * V(j, kh, d);
        r.o[(i * p.Hq + h) * D + d] = acc / l;
      }
      const T lse = m + std::log(l);
      r.lse[h * p.Tq + i] = lse;
      T delta = 0;
      for (int64_t d = 0; d < D; ++d)
        delta += r.o[(i * p.Hq + h) * D + d] * static_cast<T>(dout[(i * p.Hq + h) * D + d]);
      for (int64_t j = first; j < n; ++j) {
        const T P = std::exp(s[j] - lse);
        T dp = 0;
        for (int64_t d = 0; d < D; ++d) dp += dO(i, h, d) * V(j, kh, d);
        const T ds = R(P * (dp - delta));
        for (int64_t d = 0; d < D; ++d) {
          r.dv[(j * p.Hk + kh) * D + d] += R(P) * dO(i, h, d);
          r.dq[(i * p.Hq + h) * D + d] += scale * ds * K(j, kh, d);
          r.dk[(j * p.Hk + kh) * D + d] += scale * ds * Q(i, h, d);
        }
      }
    }
  }
  return r;
}

}  // namespace rt
