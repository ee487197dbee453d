// Sequence sharding across the cp ranks of a ring, and across the Ulysses ranks inside each ring position: which
// global positions each rank holds.
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

// 2-D (parallel.ulysses = U): ring position cp_rank's rows (shard_chunks, R = seq_len / cp of them, back to back) cut
// into U equal contiguous pieces; Ulysses rank u holds rows [u R/U, (u+1) R/U) of them (seq_len / (cp U) tokens), so
// that the all-to-all over the U ranks gathers the ring position's rows in order.
std::vector<Chunk> shard_chunks(int64_t seq_len, int cp, int cp_rank, Sharding sharding, int ulysses,
                                int ulysses_rank);

// The length a sequence of seq_len tokens is padded to so that it cuts into equal chunks: the next multiple of 2*cp
// (zigzag) or of cp (contiguous), times ulysses. The padding comes last, so causal attention keeps it out of every
// real token's view.
int64_t sharded_length(int64_t seq_len, int cp, Sharding sharding, int ulysses = 1);

// The multiple sharded_length pads to: 1 on one rank, else (2*cp or cp) * ulysses.
int64_t shard_pieces(int cp, Sharding sharding, int ulysses = 1);

// Gathers a rank's rows of a per-token array of the whole sequence: out (T_local) from global (S).
template <typename T>
std::vector<T> shard_select(const std::vector<T>& global, const std::vector<Chunk>& chunks) {
  std::vector<T> out;
  for (const Chunk& c : chunks) out.insert(out.end(), global.begin() + c.start, global.begin() + c.start + c.length);
  return out;
}

Sharding sharding_parse(const std::string& name);  // "zigzag" | "contiguous"; throws rt::UserError otherwise

}  // namespace rt
