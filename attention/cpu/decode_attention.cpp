// Decode attention on the CPU: a few query rows (one new token) against a long key cache, split over key blocks
// across threads, the blocks' partial softmax results merged by their log-sum-exp.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "attention/attention_kernels.h"
#include "core/check.h"

namespace rt {
namespace {

// Keys per block: long enough to amortise a block's merge, short enough that a 2k-token cache gives every thread work.
constexpr int64_t kDecodeBlock = 256;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

}  // namespace

// q, o: (Tq,Hq,D); k, v: (Tk,Hk,D); lse: (Hq,Tq). Masking as attention_flash_forward (causal at the offsets, document
// starts); sums in fp32 (bf16_inputs is ignored: decoding reads the cache once, rounding would save nothing).
void attention_decode(const AttentionProblem& p, const float* q, const float* k, const float* v, float* o, float* lse) {
  RT_CHECK(p.Hq > 0 && p.Hk > 0 && p.Hq % p.Hk == 0 && p.D > 0 && p.Tq >= 0 && p.Tk >= 0, "decode attention sizes");
  const int64_t D = p.D, ldq = p.Hq * D, ldk = p.Hk * D, group = p.Hq / p.Hk;
  const int64_t blocks = std::max<int64_t>(1, (p.Tk + kDecodeBlock - 1) / kDecodeBlock);
  const int64_t rows = p.Tq * p.Hq;  // (query row, head) pairs
  // Per (row, head, block): running max m, sum l, and the unnormalised output acc (D).
  std::vector<float> part_m(static_cast<size_t>(rows * blocks)), part_l(part_m.size());
  std::vector<float> part_acc(part_m.size() * static_cast<size_t>(D));
#pragma omp parallel
  {
    std::vector<float> s(kDecodeBlock);
#pragma omp for collapse(2) schedule(static)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t b = 0; b < blocks; ++b) {
        const int64_t i = r / p.Hq, h = r % p.Hq, kv = h / group, slot = r * blocks + b;
        // Visible keys of row i in this block: [j0, j1).
        int64_t j0 = b * kDecodeBlock, j1 = std::min(p.Tk, j0 + kDecodeBlock);
        if (p.causal) j1 = std::min(j1, p.q_offset + i - p.k_offset + 1);
        if (p.q_doc_start) j0 = std::max<int64_t>(j0, p.q_doc_start[i] - p.k_offset);
        float* acc = part_acc.data() + slot * D;
        std::fill(acc, acc + D, 0.f);
        part_m[slot] = kNegInf, part_l[slot] = 0.f;
        if (j1 <= j0) continue;
        const float* qi = q + i * ldq + h * D;
        float mx = kNegInf;
        for (int64_t j = j0; j < j1; ++j) {
          const float* kj = k + j * ldk + kv * D;
          float dot = 0.f;
#pragma omp simd reduction(+ : dot)
          for (int64_t d = 0; d < D; ++d) dot += qi[d] * kj[d];
          s[j - j0] = dot * p.scale;
          mx = std::max(mx, s[j - j0]);
        }
        float sum = 0.f;
        for (int64_t j = j0; j < j1; ++j) {
          const float e = std::exp(s[j - j0] - mx);
          sum += e;
          const float* vj = v + j * ldk + kv * D;
#pragma omp simd
          for (int64_t d = 0; d < D; ++d) acc[d] += e * vj[d];
        }
        part_m[slot] = mx, part_l[slot] = sum;
      }
      // Merge each (row, head)'s blocks: L = sum l_b e^(m_b - M), o = sum acc_b e^(m_b - M) / L, lse = M + log L.
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t i = r / p.Hq, h = r % p.Hq;
      float* oi = o + i * ldq + h * D;
      float M = kNegInf;
      for (int64_t b = 0; b < blocks; ++b) M = std::max(M, part_m[r * blocks + b]);
      std::fill(oi, oi + D, 0.f);
      if (M == kNegInf) {  // this row sees no key
        lse[h * p.Tq + i] = kNegInf;
        continue;
      }
      float L = 0.f;
      for (int64_t b = 0; b < blocks; ++b) {
        const int64_t slot = r * blocks + b;
        if (part_m[slot] == kNegInf) continue;
        const float w = std::exp(part_m[slot] - M);
        L += w * part_l[slot];
        const float* acc = part_acc.data() + slot * D;
#pragma omp simd
        for (int64_t d = 0; d < D; ++d) oi[d] += w * acc[d];
      }
      const float inv = 1.f / L;
#pragma omp simd
      for (int64_t d = 0; d < D; ++d) oi[d] *= inv;
      lse[h * p.Tq + i] = M + std::log(L);
    }
  }
}

}  // namespace rt
