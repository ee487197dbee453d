// `ringtrain plan`: the planner's memory and step-time prediction of the configured layout on a cluster file, or
// with --search every layout of a sequence length on D devices that fits, fastest first.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>

#include "trainer/config.h"
#include "trainer/plan_validate.h"

namespace rt {

struct PlanOptions {
  std::string cluster;    // a cluster file (configs/clusters/*.yaml)
  bool json = false;      // one JSON object instead of the text report
  bool search = false;    // enumerate layouts instead of planning the configured one
  int64_t seq_len = 0;    // --search: the sequence length (0: train.seq_len)
  int64_t devices = 0;    // --search: ranks to spread over (0: the config's cp * dp * ulysses)
  bool validate = false;  // run the planned layout (with --search: the --top fastest recommended) and measure it
  int64_t top = 3;
  ValidateOptions run;  // how --validate launches (and the config it came from)
};

// Writes the plan to `out`. Throws rt::UserError for a cluster file that does not read, a layout that needs more
// devices than the cluster has, or a search with no layout that divides the sequence.
void plan_run(const Config& config, const PlanOptions& options, std::FILE* out);

}  // namespace rt
