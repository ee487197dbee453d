// This rank's shard of a loader batch: the chunks of every sequence, gathered from the flattened batch.
#include "data/rank_shard.h"

namespace rt {

LocalBatch rank_shard(const LocalBatch& full, const std::vector<Chunk>& chunks) {
  std::vector<Chunk> rows;  // the chunks of every sequence, as positions in the flattened (B*S) batch
  for (int64_t b = 0; b < full.batch; ++b)
    for (const Chunk& c : chunks) rows.push_back({b * full.seq + c.start, c.length});
  LocalBatch out;
  out.batch = full.batch;
  for (const Chunk& c : chunks) out.seq += c.length;
  out.tokens = shard_select(full.tokens, rows);
  out.labels = shard_select(full.labels, rows);
  out.pos = shard_select(full.pos, rows);
  out.long_range = shard_select(full.long_range, rows);
  return out;
}

}  // namespace rt
