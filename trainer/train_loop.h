// The training loop: data, model, optimizer, logging, for one process or (later) a mesh of MPI ranks.
#pragma once
#include <optional>
#include <vector>

#include "trainer/config.h"

namespace rt {

struct TrainResult {
  std::vector<double> losses;                      // per step
  std::vector<std::optional<double>> long_losses;  // per step, where the task has long-range tokens
  double tokens_per_s = 0;                         // median over the steps after the first
};

struct TrainOptions {
  bool print = true;  // rank 0 prints the log lines
};

// Runs config.train.steps optimizer steps. MPI must be initialised. Throws rt::UserError for bad input.
TrainResult train_run(const Config& config, const TrainOptions& options = {});

}  // namespace rt
