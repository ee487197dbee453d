// Reductions accumulated in double: sums for losses, sums of squares for the gradient norm.
#include <omp.h>

#include <vector>

#include "core/cpu/kernels.h"

namespace rt::cpu {
namespace {

// Sum of term(x[i]) in double. Each thread sums a fixed contiguous block and the partial sums are added in
// thread order, so the result is the same bit for bit at a given thread count (an OpenMP reduction clause
// combines partials in whatever order threads finish).
template <typename Term>
double sum_in_order(const float* x, int64_t n, Term term) {
  const int threads = omp_get_max_threads();
  std::vector<double> partial(static_cast<size_t>(threads), 0.0);
#pragma omp parallel num_threads(threads)
  {
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t begin = n * t / nt, end = n * (t + 1) / nt;
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = begin; i < end; ++i) s += term(x[i]);
    partial[static_cast<size_t>(t)] = s;
  }
  double total = 0;
  for (double p : partial) total += p;
  return total;
}

}  // namespace

double sum(const float* x, int64_t n) {
  return sum_in_order(x, n, [](float v) { return static_cast<double>(v); });
}

double sum_squares(const float* x, int64_t n) {
  return sum_in_order(x, n, [](float v) { return static_cast<double>(v) * v; });
}

}  // namespace rt::cpu
