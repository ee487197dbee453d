// Zigzag and contiguous sequence sharding, and the Ulysses cut of a ring position's rows.
#include "parallel/sharding.h"

#include <algorithm>

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

std::vector<Chunk> shard_chunks(int64_t seq_len, int cp, int cp_rank, Sharding sharding, int ulysses,
                                int ulysses_rank) {
  RT_CHECK(ulysses >= 1 && ulysses_rank >= 0 && ulysses_rank < ulysses,
           "Ulysses shard of rank " + std::to_string(ulysses_rank) + " of " + std::to_string(ulysses));
  const std::vector<Chunk> ring = shard_chunks(seq_len, cp, cp_rank, sharding);
  if (ulysses == 1) return ring;
  RT_CHECK(seq_len % cp == 0 && (seq_len / cp) % ulysses == 0, "seq_len not divisible by cp*ulysses");
  const int64_t n = seq_len / cp / ulysses, begin = ulysses_rank * n, end = begin + n;
  std::vector<Chunk> out;
  for (int64_t row = 0; const Chunk& c : ring) {  // row: the ring position's row where chunk c starts
    const int64_t lo = std::max(begin, row), hi = std::min(end, row + c.length);
    if (lo < hi) out.push_back({c.start + lo - row, hi - lo});
    row += c.length;
  }
  return out;
}

int64_t shard_pieces(int cp, Sharding sharding, int ulysses) {
  return (cp == 1 ? 1 : sharding == Sharding::zigzag ? 2 * cp : cp) * ulysses;
}

int64_t sharded_length(int64_t seq_len, int cp, Sharding sharding, int ulysses) {
  const int64_t pieces = shard_pieces(cp, sharding, ulysses);
  return (seq_len + pieces - 1) / pieces * pieces;
}

Sharding sharding_parse(const std::string& name) {
  if (name == "zigzag") return Sharding::zigzag;
  if (name == "contiguous") return Sharding::contiguous;
  throw UserError("parallel.sharding '" + name + "' is not known; valid: zigzag, contiguous");
}

}  // namespace rt
