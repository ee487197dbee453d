// The loader: gives this rank its micro-batches of each step's global sequences, flattened for the model.
#pragma once
#include <cstdint>
#include <vector>

#include "data/dataset.h"

namespace rt {

// B sequences of T local tokens, flattened (N = B*T), on the host.
struct LocalBatch {
  int64_t batch = 0, seq = 0;
  std::vector<int32_t> tokens, labels;  // (N)
  std::vector<int32_t> pos;             // (N) RoPE positions: global positions within each sequence, or within each
                                        // document with reset_positions
  std::vector<int32_t> doc_start;       // (N) where each token's document starts in its sequence (0: one document)
  std::vector<uint8_t> long_range;      // (N)
};

class Loader {
 public:
  // Step s uses global sequences [s*batch_size, (s+1)*batch_size); data-parallel rank r of dp takes the r-th
  // contiguous slice of batch_size/dp of them, in micro-batches of micro_batch sequences.
  // reset_positions (data.reset_positions): RoPE positions restart at 0 at each document start.
  Loader(const Dataset& dataset, int64_t seq_len, int64_t batch_size, int64_t micro_batch, int64_t dp_rank,
         int64_t dp_size, bool reset_positions = false);
  int64_t micro_steps() const { return micro_steps_; }
  LocalBatch get(int64_t step, int64_t micro) const;

 private:
  const Dataset& dataset_;
  int64_t seq_len_, batch_size_, micro_batch_, dp_rank_, dp_size_, micro_steps_;
  bool reset_positions_;
};

}  // namespace rt
