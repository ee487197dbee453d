// Rotary position embedding, rotate-half convention (Llama / GPT-NeoX), at caller-given global positions.
#include <cmath>
#include <vector>

#include "core/cpu/kernels.h"

namespace rt::cpu {

// x (N,H,D) in place. For i < D/2 with angle a = pos * rope_inv_freq(rope, i, D) and s = rope.attention_factor:
//   x_i' = s (x_i cos a - x_{i+D/2} sin a),   x_{i+D/2}' = s (x_{i+D/2} cos a + x_i sin a).
// sign = -1 rotates by -a, which is the transpose and so the backward of the forward rotation.
void rope_apply(float* x, const int32_t* pos, int64_t N, int64_t H, int64_t D, const RopeParams& rope, float sign) {
  const int64_t half = D / 2;
  const double scale = rope.attention_factor;
  std::vector<double> inv_freq(half);
  for (int64_t i = 0; i < half; ++i) inv_freq[i] = rope_inv_freq(rope, i, D);
#pragma omp parallel
  {
    std::vector<float> cs(half), sn(half);
#pragma omp for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      for (int64_t i = 0; i < half; ++i) {
        double a = static_cast<double>(pos[n]) * inv_freq[i];
        cs[i] = static_cast<float>(scale * std::cos(a));
        sn[i] = sign * static_cast<float>(scale * std::sin(a));
      }
      for (int64_t h = 0; h < H; ++h) {
        float* v = x + (n * H + h) * D;
#pragma omp simd
        for (int64_t i = 0; i < half; ++i) {
          float a = v[i], b = v[i + half];
          v[i] = a * cs[i] - b * sn[i];
          v[i + half] = b * cs[i] + a * sn[i];
        }
      }
    }
  }
}

}  // namespace rt::cpu
