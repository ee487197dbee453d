// Sums and sums of squares in double on the GPU, in a fixed order: a fixed grid of partial sums, then one block.
#include "core/check.h"
#include "core/cuda/block_reduce.cuh"
#include "core/cuda/cuda_context.h"
#include "core/cuda/kernels.h"
#include "core/cuda/launch.cuh"

namespace rt::gpu {
namespace {

constexpr int kThreads = 256;
constexpr int kBlocks = 512;  // fixed, so that the summation order depends on n only

template <bool kSquares>
__global__ void partial_sum_kernel(const float* x, int64_t n, double* partial) {
  __shared__ double scratch[32];
  double s = 0;
  RT_GRID_STRIDE(i, n) {
    const double v = x[i];
    s += kSquares ? v * v : v;
  }
  s = block_reduce(s, scratch, SumOp{}, 0.0);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

__global__ void final_sum_kernel(const double* partial, int count, double* out) {
  __shared__ double scratch[32];
  double s = 0;
  for (int i = threadIdx.x; i < count; i += blockDim.x) s += partial[i];
  s = block_reduce(s, scratch, SumOp{}, 0.0);
  if (threadIdx.x == 0) *out = s;
}

template <bool kSquares>
double reduce(const float* x, int64_t n, cudaStream_t stream) {
  if (n == 0) return 0.0;
  auto* partial = static_cast<double*>(cuda_scratch_alloc((kBlocks + 1) * sizeof(double), stream));
  RT_LAUNCH(partial_sum_kernel<kSquares>, kBlocks, kThreads, 0, stream)(x, n, partial);
  RT_CHECK_CUDA(cudaGetLastError());
  RT_LAUNCH(final_sum_kernel, 1, kThreads, 0, stream)(partial, kBlocks, partial + kBlocks);
  RT_CHECK_CUDA(cudaGetLastError());
  double result = 0;
  RT_CHECK_CUDA(cudaMemcpyAsync(&result, partial + kBlocks, sizeof(double), cudaMemcpyDeviceToHost, stream));
  cuda_scratch_free(partial, stream);
  RT_CHECK_CUDA(cudaStreamSynchronize(stream));
  return result;
}

}  // namespace

double sum(const float* x, int64_t n, cudaStream_t stream) { return reduce<false>(x, n, stream); }
double sum_squares(const float* x, int64_t n, cudaStream_t stream) { return reduce<true>(x, n, stream); }

}  // namespace rt::gpu
