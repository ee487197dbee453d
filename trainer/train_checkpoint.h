// Checkpointing in the training loop: what a checkpoint holds, when to save, resuming, stopping on a signal.
#pragma once
#include <cstdint>
#include <string>

#include "checkpoints/checkpoint.h"
#include "core/backend.h"
#include "parallel/mesh.h"
#include "trainer/config.h"
#include "trainer/model.h"
#include "trainer/optimizer.h"

namespace rt {

// What happened at the end of a step; the same on every rank but `saved`, which rank 0 fills.
struct StepCheckpoint {
  bool written = false;      // a checkpoint of this step was saved
  CheckpointSaved saved;     // rank 0: where, how big; every rank: seconds training paused
  bool stop = false;         // a stop signal reached some rank: the loop ends after this step
  std::string signal;        // "SIGTERM" or "SIGINT" when stop
};

// The directory checkpoints go to: checkpoint.dir, or <log.dir>/checkpoints when that is empty.
std::string checkpoint_root(const Config& config);

// Loads the model weights alone (eval, sample) from the checkpoint `request` names: one checkpoint, or the newest that
// verifies in a directory of them ("" = checkpoint_root(config)). Every rank reads it; they must agree. Returns its
// directory. Throws rt::UserError when none verifies or the model's shape differs from the config.
std::string model_weights_load(const std::string& request, const Config& config, LlamaModel& model, Backend& backend,
                               Communicator& world);

// Owns checkpointing for one training run. Every rank holds the full parameters and AdamW moments, so rank 0
// writes while the others wait, and on resume every rank reads and verifies the checkpoint itself (the
// checkpoint directory must be on a file system every rank sees). A stop signal (trainer/stop_signal.h; the
// loop creates StopSignals first) on any rank makes every rank save after its step and stop.
class TrainCheckpoints {
 public:
  TrainCheckpoints(const Config& config, Mesh& mesh, Backend& backend, LlamaModel& model, AdamW& optimizer, bool print);

  // Restores a checkpoint into the model and optimizer and returns the steps it had done. `request` is a
  // checkpoint directory, a directory of checkpoints, or "" for checkpoint_root(config). From a directory the
  // `latest` one is taken; one that fails verification is reported and skipped for the next newest that
  // verifies; a directory with no checkpoint at all gives 0 (a fresh start). Throws rt::UserError for a named
  // checkpoint that fails verification, when none verifies, or when the model's shape differs from the config.
  int64_t resume(const std::string& request);

  // After `step` (1-based) finished on every rank: agrees on stop signals, and saves when checkpoint.every
  // divides the step, at the last step, or when stopping. Collective.
  StepCheckpoint after_step(int64_t step, bool last);

  // Rank 0 prints "checkpoint step 100 -> DIR (12.3 MiB, 45 ms)" and, when stopping, why.
  void report(const StepCheckpoint& s, int64_t step) const;

 private:
  CheckpointSaved save(int64_t step);
  int64_t load(const std::string& request);  // this rank's part of resume: returns the step, 0 when none
  void note(const std::string& line) const;  // rank 0 prints when printing

  const Config& config_;
  Mesh& mesh_;
  Backend& backend_;
  LlamaModel& model_;
  AdamW& optimizer_;
  bool print_;
  std::string root_;
  int64_t start_step_ = 0, start_tokens_ = 0;
};

}  // namespace rt
