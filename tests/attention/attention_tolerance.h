// The attention tests' measure: normwise relative error against double precision, at most 2x a naive version's.
#pragma once
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "tests/test_numerics.h"

namespace rt {

// The one comparator: kernel error <= 2 * naive error + kFloor, both against ref; prints the ratio. The naive
// version has the kernel's precision: fp32 for the CPU kernels, bf16-rounded operands for the CUDA ones.
inline void expect_close(const std::string& what, const VecF& kernel, const VecF& naive, const VecD& ref) {
  const double ek = rel_err_l2(kernel, ref), en = rel_err_l2(naive, ref);
  const std::string ratio = en > 0 ? std::to_string(ek / en).substr(0, 4) : "-";
  std::printf("[  error   ] %-52s kernel %.2e  naive %.2e  ratio %s\n", what.c_str(), ek, en, ratio.c_str());
  EXPECT_LE(ek, 2 * en + kFloor) << what << ": kernel error " << ek << " vs naive error " << en;
}

}  // namespace rt
