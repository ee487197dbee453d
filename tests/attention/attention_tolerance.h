// The attention tests' measure: normwise relative error against double precision, at most 2x a naive version's.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace rt {

template <class T>
using Vec = std::vector<T>;
using VecF = Vec<float>;
using VecD = Vec<double>;
using VecL = Vec<long double>;

inline constexpr double kFloor = 4 * FLT_EPSILON;  // a few float ulps, so no check has a zero tolerance

template <class T, class U>
Vec<T> as(const Vec<U>& v) {
  return Vec<T>(v.begin(), v.end());
}

inline uint64_t test_seed() {
  if (const char* s = std::getenv("RT_TEST_SEED")) return std::strtoull(s, nullptr, 10);
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

// ||got - ref||_2 / ||ref||_2 over finite ref entries (absolute when ref is all zero); non-finite ref entries
// (lse = -inf of rows that see no key) must be matched exactly; a non-finite got elsewhere is infinite error.
template <class G>
double rel_err(const Vec<G>& got, const VecD& ref) {
  EXPECT_EQ(got.size(), ref.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < std::min(got.size(), ref.size()); ++i) {
    const double g = static_cast<double>(got[i]), r = ref[i];
    if (!std::isfinite(r) || !std::isfinite(g)) {
      if (g != r) return std::numeric_limits<double>::infinity();
      continue;
    }
    num += (g - r) * (g - r);
    den += r * r;
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

// The one comparator: kernel error <= 2 * naive error + kFloor, both against ref; prints the ratio. The naive
// version has the kernel's precision: fp32 for the CPU kernels, bf16-rounded operands for the CUDA ones.
inline void expect_close(const std::string& what, const VecF& kernel, const VecF& naive, const VecD& ref) {
  const double ek = rel_err(kernel, ref), en = rel_err(naive, ref);
  const std::string ratio = en > 0 ? std::to_string(ek / en).substr(0, 4) : "-";
  std::printf("[  error   ] %-52s kernel %.2e  naive %.2e  ratio %s\n", what.c_str(), ek, en, ratio.c_str());
  EXPECT_LE(ek, 2 * en + kFloor) << what << ": kernel error " << ek << " vs naive error " << en;
}

}  // namespace rt
