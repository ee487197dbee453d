// Wall-clock timing and process memory readings for logs and benchmarks.
#pragma once
#include <chrono>
#include <cstdint>

namespace rt {

class Timer {
 public:
  Timer() : start_(std::chrono::steady_clock::now()) {}
  void reset() { start_ = std::chrono::steady_clock::now(); }
  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }

 private:
  std::chrono::steady_clock::time_point start_;
};

// Resident set size and its peak, in bytes (Linux /proc/self/status; 0 where unavailable).
int64_t memory_resident_bytes();
int64_t memory_peak_bytes();

}  // namespace rt
