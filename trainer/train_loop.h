// The training loop: data, model, optimizer, logging, for one process or (later) a mesh of MPI ranks.
#pragma once
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "trainer/config.h"

namespace rt {

struct TrainResult {
  int64_t first_step = 0;                          // steps done before this run (from the resumed checkpoint)
  std::vector<double> losses;                      // per step run, steps first_step+1, first_step+2, ...
  std::vector<std::optional<double>> long_losses;  // per step run, where the task has long-range tokens
  std::vector<std::pair<int64_t, double>> eval_losses;  // (step, held-out loss) of each train.eval_every evaluation
  double tokens_per_s = 0;                         // median over the steps after the first
  bool stopped = false;                            // ended early by SIGTERM / SIGINT, after saving a checkpoint
};

struct TrainOptions {
  bool print = true;                  // rank 0 prints the log lines
  std::optional<std::string> resume = std::nullopt;  // resume from a checkpoint: its path, or "" for the latest in checkpoint.dir
  int64_t stop_step = 0;              // end after this step (saving a checkpoint) instead of train.steps: a stage's end
};

// Runs config.train.steps optimizer steps. MPI must be initialised. Throws rt::UserError for bad input.
TrainResult train_run(const Config& config, const TrainOptions& options = {});

}  // namespace rt
