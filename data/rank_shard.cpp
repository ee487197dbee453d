// This rank's shard of a loader batch: the chunks of every sequence, gathered from the flattened batch.
#include "data/rank_shard.h"

namespace rt {

LocalBatch rank_shard(const LocalBatch& full, const std::vector<Chunk>& chunks) {
  LocalBatch out;
  out.batch = full.batch;
  for (const Chunk& c : chunks) out.seq += c.length;
  const size_t n = static_cast<size_t>(full.batch * out.seq);
  out.tokens.reserve(n), out.labels.reserve(n), out.pos.reserve(n), out.doc_start.reserve(n), out.long_range.reserve(n);
  for (int64_t b = 0; b < full.batch; ++b)
    for (const Chunk& c : chunks)
      for (int64_t p = c.start; p < c.start + c.length; ++p) {
        if (p >= full.seq) {  // padding past the sequence: one document of its own, not trained on
          out.tokens.push_back(0);
          out.labels.push_back(-1);
          out.pos.push_back(static_cast<int32_t>(p));
          out.doc_start.push_back(static_cast<int32_t>(full.seq));
          out.long_range.push_back(0);
          continue;
        }
        const size_t i = static_cast<size_t>(b * full.seq + p);
        out.tokens.push_back(full.tokens[i]);
        out.labels.push_back(full.labels[i]);
        out.pos.push_back(full.pos[i]);
        out.doc_start.push_back(full.doc_start.empty() ? 0 : full.doc_start[i]);
        out.long_range.push_back(full.long_range[i]);
      }
  return out;
}

}  // namespace rt
