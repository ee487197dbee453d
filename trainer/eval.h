// `ringtrain eval`: a checkpoint's teacher-forced loss on held-out data, forward only, through the ring.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "trainer/config.h"

namespace rt {

struct RunSetup;

struct EvalOptions {
  std::string checkpoint;        // a checkpoint, or a directory of them (its newest that verifies)
  int64_t sequences = 8;         // global sequences evaluated (rounded up to a multiple of dp)
  std::optional<uint64_t> seed;  // the data's seed; default train.seed + 1 (a held-out draw of synthetic tasks)
  std::string out;               // the JSON report; "" = <log.dir>/eval.json
  bool print = true;             // rank 0 prints the summary line
};

// Mean loss over the tokens at global positions [from, to) of the sequences (log-spaced: [0,1), [1,2), [2,4), ...).
struct PositionBucket {
  int64_t from = 0, to = 0, tokens = 0;
  double loss = 0;
};

struct EvalResult {
  std::string checkpoint;  // the directory read
  int64_t step = 0;        // the checkpoint's step
  int64_t sequences = 0, tokens = 0;
  double loss = 0;                        // mean nats per trained token
  std::optional<double> long_range_loss;  // tasks with long-range labels
  // Tasks with long-range labels: the share of them whose label is the argmax of the logits, and the share of
  // sequences whose long-range labels are all predicted so (exact match; a retrieval probe's one answer).
  std::optional<double> long_range_accuracy, exact_match;
  int64_t exact_sequences = 0;  // sequences with long-range labels (exact_match's denominator)
  std::vector<PositionBucket> by_position;
};

// The evaluation itself, on a set-up that exists (eval_run's, or the training's): `sequences` global sequences of
// `dataset` from index 0 (rounded up to a multiple of dp), forward only through the set-up's attention, the sums
// reduced over the world. No output. Collective.
EvalResult eval_sequences(const Config& config, RunSetup& setup, const Dataset& dataset, int64_t sequences);

// Evaluates on every rank of the world (dp x cp as the config says); rank 0 writes the JSON and prints one line.
// Throws rt::UserError for a checkpoint that does not verify or does not fit the config, or bad data.
EvalResult eval_run(const Config& config, const EvalOptions& options);

// The JSON report of a result (what eval writes): the totals, bits per token, perplexity, and the buckets.
std::string eval_json(const EvalResult& result, const Config& config);

}  // namespace rt
