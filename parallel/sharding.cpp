// Zigzag and contiguous sequence sharding.
#include "parallel/sharding.h"

#include "core/check.h"

namespace rt {

std::vector<Chunk> shard_chunks(int64_t seq_len, int cp, int cp_rank, Sharding sharding) {
  RT_CHECK(cp >= 1 && cp_rank >= 0 && cp_rank < cp, "shard of rank " + std::to_string(cp_rank) + " of " + std::to_string(cp));
  if (cp == 1) return {{0, seq_len}};  // one rank holds the whole sequence, of any length
  if (sharding == Sharding::contiguous) {
    RT_CHECK(seq_len % cp == 0, "seq_len not divisible by cp");
    const int64_t n = seq_len / cp;
    return {{cp_rank * n, n}};
  }
  RT_CHECK(seq_len % (2 * cp) == 0, "seq_len not divisible by 2*cp");
  const int64_t c = seq_len / (2 * cp);
  return {{cp_rank * c, c}, {(2 * cp - 1 - cp_rank) * c, c}};
}

int64_t sharded_length(int64_t seq_len, int cp, Sharding sharding) {
  const int64_t pieces = sharding == Sharding::zigzag ? 2 * cp : cp;
  return cp == 1 ? seq_len : (seq_len + pieces - 1) / pieces * pieces;
}

Sharding sharding_parse(const std::string& name) {
  if (name == "zigzag") return Sharding::zigzag;
  if (name == "contiguous") return Sharding::contiguous;
  throw UserError("parallel.sharding '" + name + "' is not known; valid: zigzag, contiguous");
}

}  // namespace rt
