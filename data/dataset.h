// Datasets: each gives global sequence i, deterministically from the seed, with labels and long-range flags.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace rt {

// One global training sequence of length S (before any sharding across ranks).
struct Sequence {
  std::vector<int32_t> tokens;      // (S) model inputs
  std::vector<int32_t> labels;      // (S) next-token targets in global order; -1 = not trained on
  std::vector<uint8_t> long_range;  // (S) 1 where the label is predictable only by attending far back
  std::vector<int32_t> doc_start;   // (S) where each token's document starts in the sequence; empty: one document
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  // Global sequence `index` (0, 1, 2, ...): the same for a given seed whatever the rank count.
  virtual Sequence get(int64_t index) const = 0;
  virtual std::string describe() const = 0;  // one line for the log
  virtual bool has_long_range() const = 0;   // whether long_range flags are ever set
  virtual bool has_documents() const { return false; }  // whether sequences may hold several documents (doc_start)
};

// What dataset_make builds (the data.* keys and the model's vocabulary).
struct DatasetSpec {
  std::string task;                // copy | recall | passkey | text | shards
  std::vector<std::string> paths;  // files, directories (every file below) or glob patterns; text: each file a document
  int64_t seq_len = 0, vocab_size = 0;
  uint64_t seed = 0;
  int64_t eot = -1;  // the token that begins every document (llm.c's <|endoftext|>); text: also put before each file
};

// Builds the dataset `spec.task`. Throws rt::UserError naming the key or file and what is valid for an unknown task,
// a missing/unreadable/invalid file, a file too short for seq_len, or an eot that is no token.
std::unique_ptr<Dataset> dataset_make(const DatasetSpec& spec);
// The same sequences with every label not flagged long_range set to -1: training on a task's answers alone
// (data.train_on=long_range). Throws rt::UserError when the dataset never flags a label.
std::unique_ptr<Dataset> long_range_labels_only(std::unique_ptr<Dataset> dataset);
// Retrieval probes (eval --task): sequences whose long_range flags mark the labels of the one thing to retrieve,
// placed at `depth` in [0, 1] of the context (0: its start, 1: just before the question). recall: the recall task's
// layout with one pair at that depth, asked for by the last query (data/synthetic_tasks.cpp); passkey: a 5-digit
// number in filler text, asked for at the end (data/passkey_task.cpp). Throws rt::UserError for an unknown task, a
// depth outside [0, 1] or a seq_len below retrieval_probe_min_seq_len(task).
std::unique_ptr<Dataset> retrieval_probe_make(const std::string& task, int64_t seq_len, double depth,
                                              int64_t vocab_size, uint64_t seed);
int64_t retrieval_probe_min_seq_len(const std::string& task);

// The same for one path (or none).
inline std::unique_ptr<Dataset> dataset_make(const std::string& task, const std::string& path, int64_t seq_len,
                                             int64_t vocab_size, uint64_t seed) {
  return dataset_make(DatasetSpec{task, path.empty() ? std::vector<std::string>{} : std::vector<std::string>{path},
                                  seq_len, vocab_size, seed});
}

}  // namespace rt
