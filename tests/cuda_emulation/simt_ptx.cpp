// The SIMT emulator's tensor-core instructions: ldmatrix.x4 (.trans) and bf16 mma.sync m16n8k16, from the PTX ISA.
//
// PTX ISA, "Matrix Fragments for mma.m16n8k16 with floating point type" (bf16), groupID = lane >> 2,
// threadID_in_group = lane % 4; each .b32 register holds two bf16, the first element in the lower 16 bits:
//   A (16x16): a0,a1: row groupID,     col tig*2 + {0,1}      a2,a3: row groupID + 8, col tig*2 + {0,1}
//              a4,a5: row groupID,     col tig*2 + 8 + {0,1}  a6,a7: row groupID + 8, col tig*2 + 8 + {0,1}
//   B (16x8):  b0,b1: row tig*2 + {0,1}, col groupID          b2,b3: row tig*2 + 8 + {0,1}, col groupID
//   C (16x8):  c0,c1: row groupID, col tig*2 + {0,1}           c2,c3: row groupID + 8, col tig*2 + {0,1}
// "ldmatrix": for .x4, threads 8i..8i+7 give the addresses of the 8 rows of matrix i; register i of each thread holds
// row lane >> 2, elements (lane % 4) * 2 + {0,1} of matrix i; with .trans the matrix is read column-major, i.e.
// element (row (lane % 4) * 2 + {0,1}, column lane >> 2).
#include "tests/cuda_emulation/simt.h"  // first: it defines the CUDA keywords

#include <cstdint>
#include <cstring>

#include "tests/cuda_emulation/simt_limits.h"
#include "tests/cuda_emulation/simt_ptx.h"

namespace simt {
namespace {

float bf16_to_float(uint32_t bits16) {
  const uint32_t bits = (bits16 & 0xFFFFu) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

uint16_t element(const void* row, int column) {
  uint16_t v;
  std::memcpy(&v, static_cast<const unsigned char*>(row) + 2 * column, sizeof v);
  return v;
}

// Runs once per warp instruction, after every lane gave its row address: all 32 lanes' registers at one instant.
template <bool kTranspose>
void ldmatrix_complete(Slot* all) {
  for (int lane = 0; lane < 32; ++lane)
    for (int m = 0; m < 4; ++m) {
      uint16_t lo, hi;
      if (kTranspose) {
        lo = element(all[8 * m + (lane % 4) * 2].pointer, lane >> 2);
        hi = element(all[8 * m + (lane % 4) * 2 + 1].pointer, lane >> 2);
      } else {
        lo = element(all[8 * m + (lane >> 2)].pointer, (lane % 4) * 2);
        hi = element(all[8 * m + (lane >> 2)].pointer, (lane % 4) * 2 + 1);
      }
      all[lane].out[m] = static_cast<uint32_t>(lo) | static_cast<uint32_t>(hi) << 16;
    }
}

// Runs once per warp instruction: A (16x16) and B (16x8) gathered from the 32 lanes' registers, then each lane's four
// entries of A B into its out[]. A[row][k] is held by lane (row % 8) * 4 + (k % 8) / 2 in register
// a[(row >= 8) + 2 (k >= 8)]; B[k][col] by lane col * 4 + (k % 8) / 2 in register b[k >= 8]; the lower half holds
// the even k.
void mma_complete(Slot* all) {
  float A[16][16], B[16][8];
  for (int row = 0; row < 16; ++row)
    for (int k = 0; k < 16; ++k)
      A[row][k] = bf16_to_float(all[(row % 8) * 4 + (k % 8) / 2].words[(row >= 8 ? 1 : 0) + (k >= 8 ? 2 : 0)] >>
                                (16 * (k % 2)));
  for (int k = 0; k < 16; ++k)
    for (int col = 0; col < 8; ++col)
      B[k][col] = bf16_to_float(all[col * 4 + (k % 8) / 2].words[4 + (k >= 8 ? 1 : 0)] >> (16 * (k % 2)));
  for (int lane = 0; lane < 32; ++lane)
    for (int e = 0; e < 4; ++e) {
      const int row = (lane >> 2) + (e >= 2 ? 8 : 0), col = (lane % 4) * 2 + (e & 1);
      float sum = 0.f;  // products of bf16 are exact in fp32; the sum is fp32, as the tensor core's
      for (int k = 0; k < 16; ++k) sum += A[row][k] * B[k][col];
      std::memcpy(&all[lane].out[e], &sum, sizeof sum);
    }
}

}  // namespace

void ldmatrix_x4(uint32_t r[4], const void* row_address, bool transpose) {
  check_shared_range(row_address, 16, "an ldmatrix row address");
  Slot mine{};
  mine.pointer = row_address;
  const Slot* all = warp_exchange(mine, transpose ? ldmatrix_complete<true> : ldmatrix_complete<false>);
  std::memcpy(r, all[position().lane].out, 4 * sizeof(uint32_t));
}

void mma_bf16_m16n8k16(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
  Slot mine{};
  std::memcpy(mine.words, a, 4 * sizeof(uint32_t));
  mine.words[4] = b0;
  mine.words[5] = b1;
  const Slot* all = warp_exchange(mine, mma_complete);
  for (int e = 0; e < 4; ++e) {
    float product;
    std::memcpy(&product, &all[position().lane].out[e], sizeof product);
    c[e] += product;
  }
}

}  // namespace simt
