// Decode attention on the CPU: a few query rows (one new token) against a long key cache, split over key blocks
// across threads, the blocks' partial softmax results merged by their log-sum-exp.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "attention/attention_kernels.h"
#include "core/check.h"
#include "core/cpu/vec_math.h"

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
    // One task is one block of keys for every (query row, head): it reads the block's K and V rows, all heads
    // together, front to back (the cache's rows hold every head: reading one head's slice would stride through it).
    std::vector<float> s(static_cast<size_t>(rows * kDecodeBlock));  // (rows, block) scores, then probabilities
#pragma omp for schedule(static)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t b0 = b * kDecodeBlock, b1 = std::min(p.Tk, b0 + kDecodeBlock);
      // Visible keys of each query row in this block: [lo[i], hi[i]) (causal at the offsets, document starts).
      std::vector<int64_t> lo(static_cast<size_t>(p.Tq)), hi(static_cast<size_t>(p.Tq));
      for (int64_t i = 0; i < p.Tq; ++i) {
        lo[i] = p.q_doc_start ? std::max<int64_t>(b0, p.q_doc_start[i] - p.k_offset) : b0;
        hi[i] = p.causal ? std::min<int64_t>(b1, p.q_offset + i - p.k_offset + 1) : b1;
      }
      for (int64_t j = b0; j < b1; ++j) {  // scores: every row against key j, K row j read once
        const float* kj = k + j * ldk;
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t i = r / p.Hq, h = r % p.Hq;
          float& out = s[static_cast<size_t>(r * kDecodeBlock + (j - b0))];
          if (j < lo[i] || j >= hi[i]) {
            out = kNegInf;
            continue;
          }
          const float* qi = q + i * ldq + h * D;
          const float* kh = kj + (h / group) * D;
          float dot = 0.f;
#pragma omp simd reduction(+ : dot)
          for (int64_t d = 0; d < D; ++d) dot += qi[d] * kh[d];
          out = dot * p.scale;
        }
      }
      for (int64_t r = 0; r < rows; ++r) {  // per row: max, exp, sum
        float* sr = s.data() + r * kDecodeBlock;
        const int64_t n = b1 - b0;
        float mx = kNegInf;
        for (int64_t j = 0; j < n; ++j) mx = std::max(mx, sr[j]);
        const int64_t slot = r * blocks + b;
        part_m[slot] = mx, part_l[slot] = 0.f;
        std::fill(part_acc.data() + slot * D, part_acc.data() + (slot + 1) * D, 0.f);
        if (mx == kNegInf) continue;
        float sum = 0.f;
#pragma omp simd reduction(+ : sum)
        for (int64_t j = 0; j < n; ++j) sum += sr[j] = cpu::exp_fast(sr[j] - mx);  // -inf -> 0
        part_l[slot] = sum;
      }
      for (int64_t j = b0; j < b1; ++j) {  // acc += P V: V row j read once
        const float* vj = v + j * ldk;
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t slot = r * blocks + b;
          const float e = s[static_cast<size_t>(r * kDecodeBlock + (j - b0))];
          if (e == 0.f) continue;
          float* acc = part_acc.data() + slot * D;
          const float* vh = vj + ((r % p.Hq) / group) * D;
#pragma omp simd
          for (int64_t d = 0; d < D; ++d) acc[d] += e * vh[d];
        }
      }
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
