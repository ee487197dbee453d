// Process-wide counters of the bytes tensors and kernel buffers hold (core/memory_count.h).
#include "core/memory_count.h"

#include <atomic>

namespace rt {

namespace {
std::atomic<int64_t> g_live{0}, g_peak{0};
}  // namespace

void memory_count_add(int64_t bytes) {
  const int64_t now = g_live.fetch_add(bytes, std::memory_order_relaxed) + bytes;
  int64_t peak = g_peak.load(std::memory_order_relaxed);
  while (now > peak && !g_peak.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
}

MemoryCount memory_count() { return {g_live.load(), g_peak.load()}; }

void memory_count_reset_peak() { g_peak.store(g_live.load()); }

}  // namespace rt
