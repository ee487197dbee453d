// Zigzag and contiguous sequence sharding.
#include "parallel/sharding.h"

#include "core/check.h"

namespace rt {

std::vector<Chunk> shard_chunks(int64_t seq_len, int cp, int cp_rank, Sharding sharding) {
  RT_CHECK(cp >= 1 && cp_rank >= 0 && cp_rank < cp, "shard of rank " + std::to_string(cp_rank) + " of " + std::to_string(cp));
  if (sharding == Sharding::contiguous) {
    RT_CHECK(seq_len % cp == 0, "seq_len not divisible by cp");
    const int64_t n = seq_len / cp;
    return {{cp_rank * n, n}};
  }
  RT_CHECK(seq_len % (2 * cp) == 0, "seq_len not divisible by 2*cp");
  const int64_t c = seq_len / (2 * cp);
  return {{cp_rank * c, c}, {(2 * cp - 1 - cp_rank) * c, c}};
}

Sharding sharding_parse(const std::string& name) {
  if (name == "zigzag") return Sharding::zigzag;
  if (name == "contiguous") return Sharding::contiguous;
  throw UserError("parallel.sharding '" + name + "' is not known; valid: zigzag, contiguous");
}

}  // namespace rt
