// Vectorisable math for hot loops: an exp that GCC turns into AVX-512 code inside `omp simd` loops.
#pragma once
#include <cstdint>
#include <cstring>

namespace rt::cpu {

// exp(x) for float, relative error < 2 ulp on [-87.3, 88.3]; 0 below (where exp is denormal or 0) and
// clamped to exp(88.37) above (softmax arguments are <= 0). Cody-Waite range reduction x = n ln2 + r, |r| <= ln2/2, degree-6 polynomial for e^r,
// then scaling by 2^n through the exponent bits. Branch-free, so it vectorises.
#pragma omp declare simd notinbranch
inline float exp_fast(float x) {
  x = x < -87.33654f ? -87.33654f : (x > 88.37f ? 88.37f : x);
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round to nearest (1.5 * 2^23)
  float r = x - n * 0.693359375f;  // ln2 split in a high part exact in float and a low correction
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return x <= -87.33654f ? 0.0f : p * scale;
}

}  // namespace rt::cpu
