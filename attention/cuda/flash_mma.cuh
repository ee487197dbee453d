// Tensor-core building blocks of the CUDA flash kernels: cp.async, ldmatrix, bf16 mma.sync m16n8k16, fast exp2.
//
// Fragment layouts of mma.sync.m16n8k16.row.col.f32.bf16.bf16.f32 (PTX ISA, "Matrix Fragments for mma.m16n8k16"),
// with g = lane / 4 and t = lane % 4:
//   A (16x16, row-major), 4 x b32 = 8 bf16: a[0] = (g, 2t..2t+1), a[1] = (g+8, 2t..), a[2] = (g, 2t+8..),
//                                            a[3] = (g+8, 2t+8..)                     (row, k)
//   B (16x8, "col"), 2 x b32 = 4 bf16:       b[0] = (k 2t..2t+1, n g), b[1] = (k 2t+8.., n g)
//   C (16x8 fp32), 4 floats:                 c[0..1] = (g, 2t..2t+1), c[2..3] = (g+8, 2t..2t+1)
// The lower 16 bits of a b32 hold the element with the smaller column (A) or k (B) index. Two C tiles side by side
// (n 0..7 and 8..15) have exactly the layout of an A fragment, so a tile of probabilities computed in registers
// feeds the next product without shared memory (FlashAttention-2).
//
// ldmatrix.x4 loads four 8x8 b16 matrices; lanes 8m..8m+7 give the row addresses of matrix m, and register m of
// lane l holds row l/4, columns 2(l%4)..+1 of matrix m. With .trans it holds rows 2(l%4)..+1 of column l/4 instead.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#ifdef RT_SIMT_EMULATION
#include "tests/cuda_emulation/simt_ptx.h"  // the PTX wrappers below, on the CPU SIMT emulator of the test suite
#endif

namespace rt::flash_cuda {

using bf16 = __nv_bfloat16;

#ifndef RT_SIMT_EMULATION
__device__ inline uint32_t smem_address(const void* p) { return static_cast<uint32_t>(__cvta_generic_to_shared(p)); }

// 16 bytes global -> shared without registers; valid = false writes 16 zero bytes (reads nothing).
__device__ inline void cp_async_16(void* smem, const void* gmem, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_address(smem)), "l"(gmem),
               "r"(valid ? 16 : 0));
}
__device__ inline void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
// Waits until at most n committed groups of this thread are still in flight.
template <int n>
__device__ inline void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(n));
}

__device__ inline void ldmatrix_x4(uint32_t r[4], const bf16* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_address(p)));
}
__device__ inline void ldmatrix_x4_trans(uint32_t r[4], const bf16* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_address(p)));
}

// c (16x8 fp32) += a (16x16 bf16) b (16x8 bf16)
__device__ inline void mma_bf16(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// 2^x, the hardware approximation (relative error ~2^-22, far below bf16's 2^-9); 2^-inf = 0.
__device__ inline float exp2_fast(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

#endif  // !RT_SIMT_EMULATION

// c0 += a b[0..1], c1 += a b[2..3]: the two 8-column B fragments one ldmatrix.x4 loads.
__device__ inline void mma_bf16_x2(float c0[4], float c1[4], const uint32_t a[4], const uint32_t b[4]) {
  mma_bf16(c0, a, b[0], b[1]);
  mma_bf16(c1, a, b[2], b[3]);
}

// Two floats -> packed bf16 pair, lo in the lower half (round to nearest even).
__device__ inline uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// Two C tiles side by side (16 rows x columns 16j..16j+15) as one bf16 A fragment (16 x 16).
__device__ inline void c_to_a(const float c0[4], const float c1[4], uint32_t a[4]) {
  a[0] = pack_bf16(c0[0], c0[1]);
  a[1] = pack_bf16(c0[2], c0[3]);
  a[2] = pack_bf16(c1[0], c1[1]);
  a[3] = pack_bf16(c1[2], c1[3]);
}

// Max / sum over the 4 lanes of a quad (the lanes that share a fragment row).
__device__ inline float quad_max(float v) {
  v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
  return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}
__device__ inline float quad_sum(float v) {
  v += __shfl_xor_sync(0xffffffffu, v, 1);
  return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

// Copies rows [row0, row0 + ROWS) of a (nrows, DP) bf16 array into smem (ROWS, DP + 8) with cp.async, zero rows past
// nrows. All THREADS threads of the block call it.
template <int ROWS, int DP, int THREADS>
__device__ inline void load_rows_async(bf16* smem, const bf16* src, int64_t row0, int64_t nrows) {
  constexpr int kChunks = DP / 8, kLd = DP + 8;  // 16-byte chunks per row; padded smem row
  for (int c = threadIdx.x; c < ROWS * kChunks; c += THREADS) {
    const int r = c / kChunks, col = (c % kChunks) * 8;
    const bool valid = row0 + r < nrows;
    cp_async_16(smem + r * kLd + col, valid ? src + (row0 + r) * DP + col : src, valid);
  }
}

}  // namespace rt::flash_cuda
