// `ringtrain eval --task recall|passkey`: retrieval accuracy of a checkpoint over a grid of context lengths x depths.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "trainer/config.h"

namespace rt {

struct RetrievalOptions {
  std::string checkpoint;        // a checkpoint, or a directory of them (its newest that verifies)
  std::string task;              // recall | passkey (data/dataset.h, retrieval_probe_make)
  std::vector<int64_t> lengths;  // context lengths; empty: train.seq_len x 1/4, 1/2, 1, 2, 4 (those the task fits)
  std::vector<double> depths;    // where the answer lies, in [0, 1]; empty: 0, 0.25, 0.5, 0.75, 1
  int64_t sequences = 16;        // probes per cell (rounded up to a multiple of dp)
  std::optional<uint64_t> seed;  // the probes' seed; default train.seed + 1
  std::string out;               // the JSON report; "" = <log.dir>/<task>_retrieval.json (the heatmap beside it)
  bool print = true;             // rank 0 prints one line per length and a summary
};

struct RetrievalCell {
  int64_t length = 0;
  double depth = 0;
  int64_t sequences = 0;
  double exact_match = 0;  // share of probes whose answer (every token of it) is the argmax: the heatmap's value
  double answer_loss = 0;  // mean nats per answer token
};

struct RetrievalResult {
  std::string checkpoint, task;
  int64_t step = 0;
  std::vector<int64_t> lengths;
  std::vector<double> depths;
  std::vector<RetrievalCell> cells;  // length-major: cells[i * depths.size() + j]
};

// Evaluates every cell on every rank of the world (dp x cp as the config says): for each length, the shared set-up
// at that seq_len and the checkpoint's weights, then `sequences` probes per depth through eval_sequences. Rank 0
// writes the JSON and the heatmap PNG. Throws rt::UserError for a checkpoint that does not verify, an unknown task,
// a depth outside [0, 1] or a length the task does not fit.
RetrievalResult retrieval_run(const Config& config, const RetrievalOptions& options);

std::string retrieval_json(const RetrievalResult& result);

}  // namespace rt
