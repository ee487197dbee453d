// The SIMT emulator's versions of the PTX wrappers in attention/cuda/flash_mma.cuh (cp.async, ldmatrix, bf16
// mma.sync m16n8k16, ex2.approx), written from the PTX ISA's fragment definitions, not from the kernels' comments.
#pragma once
#include <cuda_bf16.h>

#include <cmath>
#include <cstdint>

namespace simt {

// cp.async: the destination reads as NaN from the issue until a wait_group retires the group, which writes the data:
// both the earliest and the latest moment the PTX allows, so a kernel that races with either gets NaN.
void cp_async_16(void* shared, const void* global, bool valid);
void cp_async_commit();
void cp_async_wait(int groups_left_in_flight);

// ldmatrix.sync.aligned.m8n8.x4(.trans).shared.b16: lanes 8m..8m+7 give the row addresses of matrix m.
void ldmatrix_x4(uint32_t r[4], const void* row_address, bool transpose);

// mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32: c += a b over the warp's fragments.
void mma_bf16_m16n8k16(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1);

}  // namespace simt

namespace rt::flash_cuda {

using bf16 = __nv_bfloat16;

inline void cp_async_16(void* smem, const void* gmem, bool valid) { simt::cp_async_16(smem, gmem, valid); }
inline void cp_async_commit() { simt::cp_async_commit(); }
template <int n>
inline void cp_async_wait() {
  simt::cp_async_wait(n);
}
inline void ldmatrix_x4(uint32_t r[4], const bf16* p) { simt::ldmatrix_x4(r, p, false); }
inline void ldmatrix_x4_trans(uint32_t r[4], const bf16* p) { simt::ldmatrix_x4(r, p, true); }
inline void mma_bf16(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
  simt::mma_bf16_m16n8k16(c, a, b0, b1);
}
inline float exp2_fast(float x) { return std::exp2(x); }

}  // namespace rt::flash_cuda
