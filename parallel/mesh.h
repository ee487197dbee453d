// The process mesh: world = dp x cp x ulysses ranks, ulysses innermost (its all-to-all on neighbouring ranks, inside a
// node), then cp (the ring across the Ulysses groups), dp outermost.
#pragma once
#include <memory>
#include <vector>

#include "parallel/communicator.h"
#include "parallel/sharding.h"

namespace rt {

struct Mesh {
  int cp = 1, dp = 1, ulysses = 1;                     // sizes
  int cp_rank = 0, dp_rank = 0, ulysses_rank = 0;      // world rank = (dp_rank * cp + cp_rank) * ulysses + ulysses_rank
  std::unique_ptr<Communicator> world, cp_group, dp_group, ulysses_group;
  int sequence_ranks() const { return cp * ulysses; }  // the ranks one sequence's tokens are spread over
};

// Builds the mesh over `world`. Throws rt::UserError when cp * dp * ulysses differs from the world size.
Mesh mesh_make(std::unique_ptr<Communicator> world, int cp, int dp, int ulysses = 1);

// This rank's global positions of a sequence of seq_len (sharded_length) tokens: seq_len / sequence_ranks() of them.
std::vector<Chunk> mesh_chunks(const Mesh& mesh, int64_t seq_len, Sharding sharding);

}  // namespace rt
