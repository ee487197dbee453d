// Each rank's shard of a loader batch: rank r of cp gets chunks r and 2*cp-1-r of every sequence (zigzag).
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "data/rank_shard.h"

namespace rt {
namespace {

// B sequences of S tokens whose every field names its own (sequence, position), so a shard shows where it came from.
LocalBatch numbered_batch(int64_t B, int64_t S) {
  LocalBatch full;
  full.batch = B;
  full.seq = S;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < S; ++t) {
      full.tokens.push_back(static_cast<int32_t>(1000 * b + t));
      full.labels.push_back(t + 1 < S ? static_cast<int32_t>(1000 * b + t + 1) : -1);
      full.pos.push_back(static_cast<int32_t>(t));
      full.long_range.push_back(static_cast<uint8_t>((b + t) % 3 == 0));
    }
  return full;
}

// The expectation, written out: the S/(2*cp) positions of chunk r, then those of chunk 2*cp-1-r.
std::vector<int64_t> zigzag_positions(int64_t S, int cp, int r) {
  const int64_t c = S / (2 * cp);
  std::vector<int64_t> out;
  for (int64_t chunk : {int64_t{r}, int64_t{2 * cp - 1 - r}})
    for (int64_t i = 0; i < c; ++i) out.push_back(chunk * c + i);
  return out;
}

TEST(RankShard, ZigzagGivesRankRChunksRAndMirror) {
  const int64_t B = 3, S = 24;  // S divisible by 2*cp for cp = 1, 2, 3
  const LocalBatch full = numbered_batch(B, S);
  for (int cp : {1, 2, 3}) {
    std::vector<int> seen(static_cast<size_t>(B * S), 0);
    for (int r = 0; r < cp; ++r) {
      SCOPED_TRACE("cp " + std::to_string(cp) + " rank " + std::to_string(r));
      const LocalBatch got = rank_shard(full, shard_chunks(S, cp, r, Sharding::zigzag));
      const std::vector<int64_t> positions = zigzag_positions(S, cp, r);
      const int64_t T = static_cast<int64_t>(positions.size());
      ASSERT_EQ(T, S / cp);
      EXPECT_EQ(got.batch, B);
      EXPECT_EQ(got.seq, T);
      ASSERT_EQ(static_cast<int64_t>(got.tokens.size()), B * T);
      ASSERT_EQ(got.labels.size(), got.tokens.size());
      ASSERT_EQ(got.pos.size(), got.tokens.size());
      ASSERT_EQ(got.long_range.size(), got.tokens.size());
      for (int64_t b = 0; b < B; ++b)
        for (int64_t i = 0; i < T; ++i) {
          const size_t local = static_cast<size_t>(b * T + i), global = static_cast<size_t>(b * S + positions[i]);
          EXPECT_EQ(got.tokens[local], full.tokens[global]) << "sequence " << b << " row " << i;
          EXPECT_EQ(got.labels[local], full.labels[global]) << "sequence " << b << " row " << i;
          EXPECT_EQ(got.pos[local], positions[i]) << "sequence " << b << " row " << i;
          EXPECT_EQ(got.long_range[local], full.long_range[global]) << "sequence " << b << " row " << i;
          ++seen[global];
        }
    }
    for (size_t g = 0; g < seen.size(); ++g) EXPECT_EQ(seen[g], 1) << "cp " << cp << ": token " << g << " held " << seen[g] << " times";
  }
}

TEST(RankShard, ContiguousGivesRankRTheRthPiece) {
  const int64_t B = 2, S = 12;
  const LocalBatch full = numbered_batch(B, S);
  const LocalBatch got = rank_shard(full, shard_chunks(S, 3, 1, Sharding::contiguous));
  EXPECT_EQ(got.seq, 4);
  EXPECT_EQ(got.pos, (std::vector<int32_t>{4, 5, 6, 7, 4, 5, 6, 7}));
  EXPECT_EQ(got.tokens, (std::vector<int32_t>{4, 5, 6, 7, 1004, 1005, 1006, 1007}));
}

// A length 2*cp does not divide is padded at its end (sharded_length): every real token lands on exactly one rank as
// without padding, and the padding positions carry token 0, no label, no long-range flag and their own position.
TEST(RankShard, PaddingFillsTheLastChunksWithUntrainedTokens) {
  EXPECT_EQ(sharded_length(67, 3, Sharding::zigzag), 72);
  EXPECT_EQ(sharded_length(67, 3, Sharding::contiguous), 69);
  EXPECT_EQ(sharded_length(72, 3, Sharding::zigzag), 72);
  EXPECT_EQ(sharded_length(67, 1, Sharding::zigzag), 67);
  const int64_t B = 2, S = 23;
  const LocalBatch full = numbered_batch(B, S);
  for (Sharding sharding : {Sharding::zigzag, Sharding::contiguous})
    for (int cp : {1, 2, 3}) {
      const int64_t P = sharded_length(S, cp, sharding);
      std::vector<int> seen(static_cast<size_t>(B * S), 0);
      int64_t padding = 0;
      for (int r = 0; r < cp; ++r) {
        const std::vector<Chunk> chunks = shard_chunks(P, cp, r, sharding);
        const LocalBatch got = rank_shard(full, chunks);
        ASSERT_EQ(got.seq, P / cp);
        for (int64_t b = 0; b < B; ++b) {
          int64_t i = 0;
          for (const Chunk& c : chunks)
            for (int64_t p = c.start; p < c.start + c.length; ++p, ++i) {
              const size_t local = static_cast<size_t>(b * got.seq + i);
              EXPECT_EQ(got.pos[local], p);
              if (p < S) {
                EXPECT_EQ(got.tokens[local], full.tokens[static_cast<size_t>(b * S + p)]);
                ++seen[static_cast<size_t>(b * S + p)];
              } else {
                EXPECT_EQ(got.tokens[local], 0);
                EXPECT_EQ(got.labels[local], -1);
                EXPECT_EQ(got.long_range[local], 0);
                ++padding;
              }
            }
        }
      }
      for (int n : seen) EXPECT_EQ(n, 1) << "cp " << cp;
      EXPECT_EQ(padding, B * (P - S)) << "cp " << cp;
    }
}

}  // namespace
}  // namespace rt
