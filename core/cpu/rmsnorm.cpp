// RMSNorm forward and backward over the last dim: y = x * rstd * w, rstd = 1/sqrt(mean(x^2) + eps).
#include <omp.h>

#include <cmath>
#include <vector>

#include "core/cpu/kernels.h"

namespace rt::cpu {

// x (N,C), w (C) -> y (N,C), rstd (N)
void rmsnorm_forward(const float* x, const float* w, float eps, int64_t N, int64_t C, float* y, float* rstd) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < N; ++i) {
    const float* xi = x + i * C;
    float* yi = y + i * C;
    float ss = 0.f;
#pragma omp simd reduction(+ : ss)
    for (int64_t c = 0; c < C; ++c) ss += xi[c] * xi[c];
    float r = 1.0f / std::sqrt(ss / static_cast<float>(C) + eps);
    rstd[i] = r;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) yi[c] = xi[c] * r * w[c];
  }
}

// dx = rstd * (w*dy - xhat * mean(w*dy*xhat)), dw += sum_i dy * xhat; dx may alias dy.
void rmsnorm_backward(const float* dy, const float* x, const float* w, const float* rstd, int64_t N, int64_t C,
                      float* dx, float* dw) {
  // Each thread accumulates dw over its rows in its own row of `partial` (threads, C); the rows are added in
  // thread order afterwards, so dw is the same bit for bit at a given thread count (resume depends on it).
  const int threads = omp_get_max_threads();
  std::vector<float> partial(static_cast<size_t>(threads) * static_cast<size_t>(C), 0.f);
#pragma omp parallel num_threads(threads)
  {
    float* dw_local = partial.data() + static_cast<int64_t>(omp_get_thread_num()) * C;
#pragma omp for schedule(static)
    for (int64_t i = 0; i < N; ++i) {
      const float* dyi = dy + i * C;
      const float* xi = x + i * C;
      float* dxi = dx + i * C;
      const float r = rstd[i];
      float dot = 0.f;
#pragma omp simd reduction(+ : dot)
      for (int64_t c = 0; c < C; ++c) {
        float xhat = xi[c] * r;
        dot += dyi[c] * w[c] * xhat;
        dw_local[c] += dyi[c] * xhat;
      }
      const float mean = dot / static_cast<float>(C);
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) dxi[c] = r * (dyi[c] * w[c] - xi[c] * r * mean);
    }
  }
  for (int t = 0; t < threads; ++t)
    for (int64_t c = 0; c < C; ++c) dw[c] += partial[static_cast<size_t>(t) * static_cast<size_t>(C) + c];
}

}  // namespace rt::cpu
