// Attention kernel table lookup for a build with the GPU path: the CPU table, or the CUDA kernels on the compute stream.
#include "attention/attention_ops.h"
#include "attention/cuda/attention_cuda.h"
#include "core/cuda/cuda_context.h"

namespace rt {
namespace {

// The AttentionOps signatures: the CUDA kernels on this process's compute stream.
void forward(const AttentionProblem& p, const float* q, const float* k, const float* v, float* o, float* lse) {
  attention_cuda_flash_forward(p, q, k, v, o, lse, cuda_stream());
}
void delta(const AttentionProblem& p, const float* o, const float* dout, float* d) {
  attention_cuda_delta(p, o, dout, d, cuda_stream());
}
void backward(const AttentionProblem& p, const float* q, const float* k, const float* v, const float* dout,
              const float* lse, const float* d, float* dq, float* dk, float* dv) {
  attention_cuda_flash_backward(p, q, k, v, dout, lse, d, dq, dk, dv, cuda_stream());
}
void merge(const float* ob, const float* lb, int64_t n, int64_t row, int64_t T, int64_t H, int64_t D, float* o,
           float* lse) {
  attention_cuda_merge(ob, lb, n, row, T, H, D, o, lse, cuda_stream());
}
void gather_columns(const float* src, int64_t H, int64_t T, int64_t row, int64_t n, float* dst) {
  attention_cuda_gather_columns(src, H, T, row, n, dst, cuda_stream());
}

}  // namespace

const AttentionOps& attention_ops_for(Device device) {
  static const AttentionOps cuda_ops{forward, delta, backward, merge, gather_columns, forward};
  return device == Device::cuda ? cuda_ops : attention_cpu_ops();
}

}  // namespace rt
