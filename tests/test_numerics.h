// The numeric tests' shared measures: a replayable random seed and relative errors against a double reference.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <random>
#include <vector>

namespace rt {

template <class T>
using Vec = std::vector<T>;
using VecF = Vec<float>;
using VecD = Vec<double>;
using VecL = Vec<long double>;

inline constexpr double kFloor = 4 * FLT_EPSILON;  // a few float ulps, so no check has a zero tolerance

// Element conversion: references run on exactly the float values the kernel saw.
template <class T, class U>
Vec<T> as(const Vec<U>& v) {
  return Vec<T>(v.begin(), v.end());
}

// A fresh seed per test, or RT_TEST_SEED=<seed> to replay one (tests print theirs in the failure trace).
inline uint64_t test_seed() {
  if (const char* s = std::getenv("RT_TEST_SEED")) return std::strtoull(s, nullptr, 10);
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

// Relative error of got (n) against ref (n) over finite ref entries: `norm` accumulates the differences and the
// reference values and finishes their ratio (the differences alone when ref is all zero). A non-finite ref entry
// (lse = -inf of a row that sees no key) must be matched exactly; a non-finite got entry elsewhere is an infinite
// error.
template <class G, class Norm>
double rel_err_by(const Vec<G>& got, const VecD& ref, Norm norm) {
  EXPECT_EQ(got.size(), ref.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < std::min(got.size(), ref.size()); ++i) {
    const double g = static_cast<double>(got[i]), r = ref[i];
    if (!std::isfinite(r) || !std::isfinite(g)) {
      if (g != r) return std::numeric_limits<double>::infinity();
      continue;
    }
    num = norm.add(num, g - r);
    den = norm.add(den, r);
  }
  return norm.finish(den > 0 ? num / den : num);
}

// ||got - ref||_2 / ||ref||_2 (normwise: the attention tests' measure).
template <class G>
double rel_err_l2(const Vec<G>& got, const VecD& ref) {
  struct L2 {
    double add(double sum, double x) const { return sum + x * x; }
    double finish(double sum) const { return std::sqrt(sum); }
  };
  return rel_err_by(got, ref, L2{});
}

// max|got - ref| / max|ref| (elementwise worst case: the Backend op tests' measure).
template <class G>
double rel_err_max(const Vec<G>& got, const VecD& ref) {
  struct Max {
    double add(double largest, double x) const { return std::max(largest, std::abs(x)); }
    double finish(double largest) const { return largest; }
  };
  return rel_err_by(got, ref, Max{});
}

}  // namespace rt
