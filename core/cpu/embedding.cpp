// Token embedding lookup and its scatter-add backward.
#include <cstring>

#include "core/cpu/kernels.h"

namespace rt::cpu {

// tokens (N), table (V,C) -> out (N,C). Tokens are validated by the data layer.
void embedding_forward(const int32_t* tokens, const float* table, int64_t N, int64_t C, float* out) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < N; ++i) std::memcpy(out + i * C, table + static_cast<int64_t>(tokens[i]) * C, C * sizeof(float));
}

// dtable (V,C) += scatter of dout rows. Threads own disjoint column ranges, so no atomics are needed.
void embedding_backward(const int32_t* tokens, const float* dout, int64_t N, int64_t V, int64_t C, float* dtable) {
  (void)V;
  constexpr int64_t kBlock = 64;
  const int64_t blocks = (C + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t c0 = b * kBlock, c1 = c0 + kBlock < C ? c0 + kBlock : C;
    for (int64_t i = 0; i < N; ++i) {
      float* dst = dtable + static_cast<int64_t>(tokens[i]) * C;
      const float* src = dout + i * C;
#pragma omp simd
      for (int64_t c = c0; c < c1; ++c) dst[c] += src[c];
    }
  }
}

}  // namespace rt::cpu
