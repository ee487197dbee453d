// Bytes of host memory held by the backend's tensors and the kernels' own buffers: now and the high-water mark.
// The planner's memory model (planner/memory_model.h) is checked against these counts; the process's resident set
// adds the runtime (code, MPI, oneDNN, stacks) on top.
#pragma once
#include <cstdint>

namespace rt {

struct MemoryCount {
  int64_t live = 0;  // bytes held now
  int64_t peak = 0;  // the most held at once since the start or the last memory_count_reset_peak
};

// Records `bytes` taken (> 0) or given back (< 0). Thread-safe.
void memory_count_add(int64_t bytes);
MemoryCount memory_count();
// peak := live, to measure the high-water mark of what follows.
void memory_count_reset_peak();

}  // namespace rt
