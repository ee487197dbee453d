// Softmax cross-entropy over the vocabulary on the GPU: a block per token row; losses, log-sum-exp, logits gradient.
#include "core/check.h"
#include "core/cuda/block_reduce.cuh"
#include "core/cuda/cuda_context.h"
#include "core/cuda/kernels.h"
#include "core/cuda/launch.cuh"

namespace rt::gpu {
namespace {

constexpr int kThreads = 256;

// logits (N,V), labels (N) (negative = ignored) -> losses (N) (0 where ignored), lse (N)
// hits, when given: 1 where the label is the row's first largest logit, else 0.
__global__ void cross_entropy_forward_kernel(const float* logits, const int32_t* labels, int64_t V, float* losses,
                                             float* lse, float* hits) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const float* z = logits + row * V;
  float mx = -INFINITY;
  for (int64_t j = threadIdx.x; j < V; j += blockDim.x) mx = fmaxf(mx, z[j]);
  mx = block_reduce(mx, scratch, MaxOp{}, -INFINITY);
  __syncthreads();  // scratch is reused below
  float s = 0.f;
  for (int64_t j = threadIdx.x; j < V; j += blockDim.x) s += expf(z[j] - mx);
  s = block_reduce(s, scratch, SumOp{}, 0.f);
  const int32_t y = labels[row];
  if (threadIdx.x == 0) {
    const float l = mx + logf(s);
    lse[row] = l;
    losses[row] = y >= 0 ? l - z[y] : 0.f;
  }
  if (!hits) return;
  __syncthreads();  // scratch is reused below
  float earlier = 0.f;  // maxima before the label: then the label is not the first argmax
  for (int64_t j = threadIdx.x; j < y; j += blockDim.x) earlier += z[j] == mx ? 1.f : 0.f;
  earlier = block_reduce(earlier, scratch, SumOp{}, 0.f);
  if (threadIdx.x == 0) hits[row] = y >= 0 && z[y] == mx && earlier == 0.f ? 1.f : 0.f;
}

// dlogits = scale * (softmax - onehot), zero rows where the label is ignored; dlogits may alias logits.
__global__ void cross_entropy_backward_kernel(const float* logits, const int32_t* labels, const float* lse, int64_t V,
                                              float scale, float* dlogits) {
  const int64_t row = blockIdx.x;
  const float* z = logits + row * V;
  float* dz = dlogits + row * V;
  const int32_t y = labels[row];
  const float l = lse[row];
  for (int64_t j = threadIdx.x; j < V; j += blockDim.x)
    dz[j] = y < 0 ? 0.f : scale * expf(z[j] - l) - (j == y ? scale : 0.f);
}

}  // namespace

void cross_entropy_forward(const float* logits, const int32_t* labels, int64_t N, int64_t V, float* losses, float* lse,
                           float* hits, cudaStream_t stream) {
  if (N == 0) return;
  RT_LAUNCH(cross_entropy_forward_kernel, static_cast<unsigned>(N), kThreads, 0, stream)(logits, labels, V, losses, lse,
                                                                                   hits);
  RT_CHECK_CUDA(cudaGetLastError());
}

void cross_entropy_backward(const float* logits, const int32_t* labels, const float* lse, int64_t N, int64_t V,
                            float scale, float* dlogits, cudaStream_t stream) {
  if (N == 0) return;
  RT_LAUNCH(cross_entropy_backward_kernel, static_cast<unsigned>(N), kThreads, 0, stream)(logits, labels, lse, V, scale,
                                                                                    dlogits);
  RT_CHECK_CUDA(cudaGetLastError());
}

}  // namespace rt::gpu
