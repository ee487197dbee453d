// The SIMT emulator itself: its warp and block semantics on small kernels, and each of its checks firing on a kernel
// that breaks the rule it guards (so a kernel that passes under it has been held to those rules).
#include "tests/cuda_emulation/simt.h"  // first: it defines the CUDA keywords

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "tests/cuda_emulation/simt_ptx.h"

namespace {

// out[block] = sum of threadIdx.x over the block: shuffles within warps, shared memory across them.
__global__ void block_sum_kernel(int* out) {
  __shared__ int partial[32];
  int v = static_cast<int>(threadIdx.x);
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = v;
  __syncthreads();
  if (threadIdx.x == 0) {
    int s = 0;
    for (unsigned w = 0; w < blockDim.x / 32; ++w) s += partial[w];
    out[blockIdx.x] = s;
  }
}

TEST(Simt, ShufflesAndSharedMemoryReduceABlock) {
  std::vector<int> out(3, -1);
  RT_LAUNCH(block_sum_kernel, 3, 96, 0, nullptr)(out.data());
  for (int s : out) EXPECT_EQ(s, 95 * 96 / 2);
}

// Each thread copies 16 bytes with cp.async and reads them before and after the wait.
__global__ void cp_async_kernel(const float* src, float* before, float* after) {
  RT_DYNAMIC_SHARED(float, smem);
  const unsigned i = threadIdx.x;
  rt::flash_cuda::cp_async_16(smem + 4 * i, src + 4 * i, true);
  rt::flash_cuda::cp_async_commit();
  before[i] = smem[4 * i];
  rt::flash_cuda::cp_async_wait<0>();
  after[i] = smem[4 * i];
}

TEST(Simt, CpAsyncDataArrivesAtTheWaitAndNotBefore) {
  alignas(16) float src[4 * 32];
  for (int i = 0; i < 4 * 32; ++i) src[i] = static_cast<float>(i);
  std::vector<float> before(32), after(32);
  RT_LAUNCH(cp_async_kernel, 1, 32, sizeof src, nullptr)(static_cast<const float*>(src), before.data(), after.data());
  for (int i = 0; i < 32; ++i) {
    EXPECT_TRUE(std::isnan(before[i])) << i;
    EXPECT_EQ(after[i], 4.f * i);
  }
}

// Thread 32 waits at the block barrier while the rest of its warp waits for it in a warp collective.
__global__ void deadlock_kernel() {
  if (threadIdx.x == 32 || threadIdx.x < 32)
    __syncthreads();
  else
    __syncwarp();
}

TEST(SimtDeathTest, BarrierThatCannotCompleteIsADeadlock) {
  EXPECT_DEATH(RT_LAUNCH(deadlock_kernel, 1, 64, 0, nullptr)(), "deadlock in block \\(0,0,0\\)");
}

// Lane 0 alone enters a full-warp shuffle; the other lanes leave.
__global__ void lone_shuffle_kernel(float* out) {
  if (threadIdx.x == 0) out[0] = __shfl_xor_sync(0xffffffffu, 1.f, 1);
}

TEST(SimtDeathTest, DivergentWarpCollectiveIsAnError) {
  float out = 0;
  EXPECT_DEATH(RT_LAUNCH(lone_shuffle_kernel, 1, 32, 0, nullptr)(&out), "exited while other lanes of its warp wait");
}

__global__ void ldmatrix_past_end_kernel() {
  RT_DYNAMIC_SHARED(rt::flash_cuda::bf16, smem);
  uint32_t r[4];
  rt::flash_cuda::ldmatrix_x4(r, smem + 8 * (threadIdx.x % 8 + 1));  // rows 1..8 of an 8-row buffer
}

TEST(SimtDeathTest, LdmatrixPastTheSharedMemoryIsAnError) {
  EXPECT_DEATH(RT_LAUNCH(ldmatrix_past_end_kernel, 1, 32, 8 * 16, nullptr)(),
               "outside the block's dynamic shared memory");
}

__global__ void empty_kernel() {}

TEST(SimtDeathTest, SharedMemoryAboveTheDefaultNeedsTheAttribute) {
  RT_LAUNCH(empty_kernel, 1, 32, 48 * 1024, nullptr)();  // the default limit is fine
  EXPECT_DEATH(RT_LAUNCH(empty_kernel, 1, 32, 64 * 1024, nullptr)(), "no cudaFuncSetAttribute raised the limit");
  EXPECT_DEATH(cudaFuncSetAttribute(empty_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 200 * 1024),
               "sm_80 allows 166912");
}

}  // namespace
