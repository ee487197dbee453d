// bfloat16: the upper 16 bits of an fp32, rounded to nearest even; conversions shared by the CPU code and the tests.
#pragma once
#include <cstdint>
#include <cstring>

namespace rt {

// x rounded to the nearest bf16 (ties to even), as its 16 bits. NaN stays a (quiet) NaN; overflow rounds to inf.
inline uint16_t bf16_bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);  // NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

inline float bf16_to_float(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

// x rounded to bf16 and widened back: the value a bf16 GEMM multiplies.
inline float bf16_round(float x) { return bf16_to_float(bf16_bits(x)); }

}  // namespace rt
