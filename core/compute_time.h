// Seconds the CPU's GEMMs and attention kernels have run, summed over the process: the training step's breakdown
// (metrics.jsonl's gemm_ms and attention_ms) and the rates `ringtrain calibrate` measures inside a real step.
// The CUDA backend's kernels are asynchronous and are not timed here.
#pragma once

namespace rt {

enum class ComputeKind { gemm, attention };

struct ComputeTime {
  double gemm_s = 0;       // Backend::gemm and gemm_bf16 (the linear layers and the head)
  double attention_s = 0;  // the flash kernels: forward, delta and backward (not the ring's merges)
};

// Sums so far. Thread-safe.
ComputeTime compute_time();

// Adds the time from construction to destruction to `kind`'s sum (the caller's thread, kernels that use OpenMP
// inside included).
class ComputeTimed {
 public:
  explicit ComputeTimed(ComputeKind kind);
  ~ComputeTimed();
  ComputeTimed(const ComputeTimed&) = delete;
  ComputeTimed& operator=(const ComputeTimed&) = delete;

 private:
  ComputeKind kind_;
  long long start_ns_;
};

}  // namespace rt
