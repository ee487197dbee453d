// llm.c token shards: header of 256 little-endian int32 ([0] magic 20240520, [1] version 1, [2] token
// count N, rest 0), then N little-endian uint16 tokens. Writer for tests and tools; validating reader.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace rt {

inline constexpr int32_t kShardMagic = 20240520;
inline constexpr int32_t kShardVersion = 1;
inline constexpr int64_t kShardHeaderInts = 256;

// Writes tokens (N) as one shard. Throws rt::UserError if the file cannot be written.
void shard_write(const std::string& path, const std::vector<uint16_t>& tokens);

// Reads one shard fully: tokens (N). Throws rt::UserError naming the file for an unreadable file, a short
// header, a bad magic or version, a size that disagrees with the header, or a token >= vocab_size.
std::vector<uint16_t> shard_read(const std::string& path, int64_t vocab_size);

}  // namespace rt
