// The CPU attention kernel table: the flash kernels, and the fp32 merge of partial results ring attention needs.
#include "attention/attention_ops.h"

#include <cmath>
#include <limits>

#include "core/compute_time.h"

namespace rt {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

float log_sigmoid(float x) { return x > 0 ? -std::log1p(std::exp(-x)) : x - std::log1p(std::exp(x)); }

// Merges a block result (ob (n,H,D), lb (H,n)) into the running (o (T,H,D), lse (H,T)) at local rows
// [row, row+n): O' = O - sigmoid(Lb - L) (O - Ob), L' = L - logsigmoid(L - Lb); the first block is copied.
void merge_block(const float* ob, const float* lb, int64_t n, int64_t row, int64_t T, int64_t H, int64_t D, float* o,
                 float* lse) {
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t h = 0; h < H; ++h) {
    for (int64_t i = 0; i < n; ++i) {
      const float b = lb[h * n + i];
      float& l = lse[h * T + row + i];
      if (b == kNegInf) continue;  // this block is invisible to the row
      float* orow = o + ((row + i) * H + h) * D;
      const float* brow = ob + (i * H + h) * D;
      if (l == kNegInf) {
        for (int64_t d = 0; d < D; ++d) orow[d] = brow[d];
        l = b;
        continue;
      }
      const float s = 1.0f / (1.0f + std::exp(l - b));  // sigmoid(b - l)
#pragma omp simd
      for (int64_t d = 0; d < D; ++d) orow[d] -= s * (orow[d] - brow[d]);
      l = l - log_sigmoid(l - b);
    }
  }
}

// Copies columns [row, row+n) of a (H,T) array into a contiguous (H,n) one.
void gather_columns(const float* src, int64_t H, int64_t T, int64_t row, int64_t n, float* dst) {
  for (int64_t h = 0; h < H; ++h)
    for (int64_t i = 0; i < n; ++i) dst[h * n + i] = src[h * T + row + i];
}

// The kernels, each call's time added to the attention's (core/compute_time.h).
void forward_timed(const AttentionProblem& p, const float* q, const float* k, const float* v, float* o, float* lse) {
  const ComputeTimed timed(ComputeKind::attention);
  attention_flash_forward(p, q, k, v, o, lse);
}
void delta_timed(const AttentionProblem& p, const float* o, const float* dout, float* delta) {
  const ComputeTimed timed(ComputeKind::attention);
  attention_delta(p, o, dout, delta);
}
void backward_timed(const AttentionProblem& p, const float* q, const float* k, const float* v, const float* dout,
                    const float* lse, const float* delta, float* dq, float* dk, float* dv) {
  const ComputeTimed timed(ComputeKind::attention);
  attention_flash_backward(p, q, k, v, dout, lse, delta, dq, dk, dv);
}
void decode_timed(const AttentionProblem& p, const float* q, const float* k, const float* v, float* o, float* lse) {
  const ComputeTimed timed(ComputeKind::attention);
  attention_decode(p, q, k, v, o, lse);
}

}  // namespace

const AttentionOps& attention_cpu_ops() {
  static const AttentionOps ops{forward_timed, delta_timed, backward_timed, merge_block, gather_columns, decode_timed};
  return ops;
}

}  // namespace rt
