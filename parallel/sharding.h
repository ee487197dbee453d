// Sequence sharding across the cp ranks of a ring: which global positions each rank holds.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace rt {

// zigzag: the sequence is cut into 2*cp chunks and rank r holds chunks r and 2*cp-1-r, so every rank does
// the same causal work. contiguous: rank r holds the r-th of cp equal pieces (for comparison).
enum class Sharding { zigzag, contiguous };

// Global positions [start, start + length); a rank's local rows are its chunks back to back, in order.
struct Chunk {
  int64_t start = 0, length = 0;
};

std::vector<Chunk> shard_chunks(int64_t seq_len, int cp, int cp_rank, Sharding sharding);

// The length a sequence of seq_len tokens is padded to so that it cuts into equal chunks: the next multiple of 2*cp
// (zigzag) or of cp (contiguous). The padding comes last, so causal attention keeps it out of every real token's view.
int64_t sharded_length(int64_t seq_len, int cp, Sharding sharding);

// Gathers a rank's rows of a per-token array of the whole sequence: out (T_local) from global (S).
template <typename T>
std::vector<T> shard_select(const std::vector<T>& global, const std::vector<Chunk>& chunks) {
  std::vector<T> out;
  for (const Chunk& c : chunks) out.insert(out.end(), global.begin() + c.start, global.begin() + c.start + c.length);
  return out;
}

Sharding sharding_parse(const std::string& name);  // "zigzag" | "contiguous"; throws rt::UserError otherwise

}  // namespace rt
