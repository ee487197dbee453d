// This rank's shard of a loader batch: the tokens of its sequence chunks (zigzag or contiguous), global positions kept.
#pragma once
#include <vector>

#include "data/loader.h"
#include "parallel/sharding.h"

namespace rt {

// full: B sequences of S tokens (N = B*S); chunks: this rank's global positions within one sequence
// (shard_chunks of the sharded length, which may exceed S). Returns B sequences of T = sum of the chunk lengths
// (N = B*T): each sequence's chunks back to back, in order, with their tokens, labels, global positions and
// long-range flags and document starts. Positions at or past S are padding: token 0, label -1 (not trained on), their
// own position, one document starting at S.
LocalBatch rank_shard(const LocalBatch& full, const std::vector<Chunk>& chunks);

}  // namespace rt
