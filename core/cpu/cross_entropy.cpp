// Softmax cross-entropy over the vocabulary: per-token losses and log-sum-exp, and the logits gradient.
#include <cmath>

#include "core/cpu/kernels.h"
#include "core/cpu/vec_math.h"

namespace rt::cpu {

// logits (N,V), labels (N) (negative = ignored) -> losses (N), lse (N), hits (N) or nullptr: 1 where the label is
// the row's argmax (its first largest logit), else 0.
void cross_entropy_forward(const float* logits, const int32_t* labels, int64_t N, int64_t V, float* losses,
                           float* lse, float* hits) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < N; ++i) {
    const float* z = logits + i * V;
    float mx = z[0];
    for (int64_t j = 1; j < V; ++j) mx = z[j] > mx ? z[j] : mx;
    float s = 0.f;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < V; ++j) s += exp_fast(z[j] - mx);
    float l = mx + std::log(s);
    lse[i] = l;
    const int32_t y = labels[i];
    losses[i] = y >= 0 ? l - z[y] : 0.f;
    if (!hits) continue;
    bool hit = y >= 0 && z[y] == mx;
    for (int64_t j = 0; hit && j < y; ++j) hit = z[j] != mx;
    hits[i] = hit ? 1.f : 0.f;
  }
}

// dlogits = scale * (softmax - onehot), zero rows where the label is ignored; dlogits may alias logits.
void cross_entropy_backward(const float* logits, const int32_t* labels, const float* lse, int64_t N, int64_t V,
                            float scale, float* dlogits) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < N; ++i) {
    const float* z = logits + i * V;
    float* dz = dlogits + i * V;
    const int32_t y = labels[i];
    if (y < 0) {
      for (int64_t j = 0; j < V; ++j) dz[j] = 0.f;
      continue;
    }
    const float l = lse[i];
#pragma omp simd
    for (int64_t j = 0; j < V; ++j) dz[j] = scale * exp_fast(z[j] - l);
    dz[y] -= scale;
  }
}

}  // namespace rt::cpu
