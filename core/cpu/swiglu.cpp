// SwiGLU activation: out = silu(gate) * up, silu(g) = g * sigmoid(g).
#include <cmath>

#include "core/cpu/kernels.h"
#include "core/cpu/vec_math.h"

namespace rt::cpu {

void swiglu_forward(const float* gate, const float* up, int64_t n, float* out) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    float g = gate[i];
    out[i] = g / (1.0f + exp_fast(-g)) * up[i];
  }
}

// d/dg silu(g) = s (1 + g (1 - s)), s = sigmoid(g). dgate/dup may alias gate/up.
void swiglu_backward(const float* dout, const float* gate, const float* up, int64_t n, float* dgate, float* dup) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    float g = gate[i], u = up[i], d = dout[i];
    float s = 1.0f / (1.0f + exp_fast(-g));
    float silu = g * s;
    dgate[i] = d * u * s * (1.0f + g * (1.0f - s));
    dup[i] = d * silu;
  }
}

}  // namespace rt::cpu
