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
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  // Global sequence `index` (0, 1, 2, ...): the same for a given seed whatever the rank count.
  virtual Sequence get(int64_t index) const = 0;
  virtual std::string describe() const = 0;  // one line for the log
  virtual bool has_long_range() const = 0;   // whether long_range flags are ever set
};

// Builds the dataset `task` (copy | recall | text | shards). Throws rt::UserError naming the key or file
// and what is valid for an unknown task, a missing/unreadable/invalid file, or a file too short for seq_len.
std::unique_ptr<Dataset> dataset_make(const std::string& task, const std::string& path, int64_t seq_len,
                                      int64_t vocab_size, uint64_t seed);

}  // namespace rt
