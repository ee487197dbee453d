// `ringtrain plan --validate`: runs planned layouts a few real steps and sets the measured step time and peak memory
// per rank beside the prediction, with the signed error.
#pragma once
#include <cstdio>
#include <string>
#include <vector>

#include "planner/layout_search.h"
#include "trainer/config.h"

namespace rt {

struct ValidateOptions {
  std::string launch = "launch/run.sh";  // the launcher of `train` (launch/run.sh [--local-cluster | --hostfile F])
  std::string config_path;               // the --config the plan was made from ("" = defaults)
  std::vector<std::string> overrides;    // its --set overrides
  int64_t steps = 4;                     // steps run; the first is not timed
};

struct ValidatedLayout {
  PlannedLayout planned;
  double measured_step_s = 0;          // median of the steps after the first
  double measured_resident_bytes = 0;  // the largest rank's resident high-water mark
  double measured_tensor_bytes = 0;    // the largest rank's counted tensor peak
  // Rank 0's step by part (metrics.jsonl, CPU runs; medians like the step's): GEMMs, flash attention, communication
  // waited for, and the rest (elementwise work, AdamW, the loader), beside the time model's terms.
  bool measured_parts = false;
  double measured_gemm_s = 0, measured_attention_s = 0, measured_wait_s = 0, measured_other_s = 0;
  double step_error() const { return planned.time.step_s / measured_step_s - 1; }
  double memory_error() const { return static_cast<double>(planned.memory.total()) / measured_resident_bytes - 1; }
};

// Runs `layout` with train.steps = options.steps through the launcher (RINGTRAIN_BIN set to this program) and
// reads its metrics.jsonl and memory line. Throws rt::UserError when the launcher is missing or the run fails.
ValidatedLayout plan_validate(const PlannedLayout& layout, const ValidateOptions& options);

// "| cp 2 x dp 1 ... | 1.234 | 1.300 | -5.1% | 1.11 | 1.09 | +1.8% |" and its header.
std::string validated_header();
std::string validated_row(const ValidatedLayout& v);

}  // namespace rt
