// Per-step metrics: the fixed-format log line rank 0 prints and the same record appended to metrics.jsonl.
#pragma once
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

namespace rt {

// A CPU step by part, in milliseconds: its GEMMs, its flash kernels (core/compute_time.h), and the communication it
// waited for (the ring's exposed exchanges, Ulysses' all-to-alls, the all-reduces the backward did not hide). The rest
// of the step is elementwise work, the optimizer and the loader.
struct StepParts {
  double gemm_ms = 0, attention_ms = 0, comm_wait_ms = 0;
};

// One step's time as metrics.jsonl records it, in seconds: the whole step and, on CPU runs, its parts (other: what
// is left of the step beside GEMMs, attention and the waits).
struct StepSeconds {
  double step = 0;
  bool has_parts = false;
  double gemm = 0, attention = 0, comm_wait = 0, other = 0;
};
// The steps after the first (the first pays the warm-up: buffers, JIT kernels) in <dir>/metrics.jsonl; empty when
// the file is missing or holds no such step.
std::vector<StepSeconds> metrics_step_seconds(const std::string& dir);

struct StepMetrics {
  int64_t step = 0, steps = 0;          // 1-based step of steps
  double loss = 0;
  std::optional<double> long_range_loss;
  double lr = 0, grad_norm = 0;
  double tokens_per_s = 0, ms_per_step = 0;
  double peak_fraction = 0;             // achieved FLOP/s over the machine's fp32 peak
  double memory_gib = 0;                // resident memory of rank 0
  double eta_s = 0;
  std::optional<double> checkpoint_ms;  // training paused this long to save a checkpoint after the step
  // data.document_mask: the share of the causal attention's (query, key) pairs that lie in other documents, which
  // the kernels skip (to tile granularity), and with a ring the share of its block products skipped whole (rank 0's).
  std::optional<double> doc_skipped, ring_blocks_skipped;
  std::optional<StepParts> parts;  // rank 0's (CPU runs)
};

// "step 120/2000 | loss 1.2340 | long 0.5120 | lr 3.0e-04 | grad 0.81 | 1843 tok/s | 412 ms | 41% peak | 2.1 GiB |
//  docs skip 63% (ring blocks 40%) | eta 3m12s"
std::string metrics_line(const StepMetrics& m);
// One JSON object, no newline: {"step":..,"loss":..,"lr":..,"grad_norm":..,"tokens_per_s":..,...}
std::string metrics_json(const StepMetrics& m);

// Draws a run's curves from <dir>/metrics.jsonl as a PNG at `png`: loss and long-range loss against the step (for
// users without TensorBoard). Throws rt::UserError when the file is missing, holds no step, or the PNG cannot be written.
void metrics_plot(const std::string& dir, const std::string& png);

// Appends JSON lines to <dir>/metrics.jsonl. Opened fresh it truncates the file; resuming after step
// `resumed_from` > 0 it keeps the records of steps up to that one and drops later ones (they are redone).
class MetricsLog {
 public:
  explicit MetricsLog(const std::string& dir, int64_t resumed_from = 0);
  ~MetricsLog();
  void append(const StepMetrics& m);

 private:
  std::FILE* file_ = nullptr;
};

}  // namespace rt
