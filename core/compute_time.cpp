// Process-wide sums of the CPU kernels' run time by kind (core/compute_time.h).
#include "core/compute_time.h"

#include <atomic>
#include <chrono>

namespace rt {

namespace {
std::atomic<long long> g_ns[2]{};  // by ComputeKind

long long now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

ComputeTime compute_time() {
  return {static_cast<double>(g_ns[0].load(std::memory_order_relaxed)) * 1e-9,
          static_cast<double>(g_ns[1].load(std::memory_order_relaxed)) * 1e-9};
}

ComputeTimed::ComputeTimed(ComputeKind kind) : kind_(kind), start_ns_(now_ns()) {}

ComputeTimed::~ComputeTimed() {
  g_ns[static_cast<int>(kind_)].fetch_add(now_ns() - start_ns_, std::memory_order_relaxed);
}

}  // namespace rt
