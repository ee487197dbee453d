// Reading and writing one llm.c token shard (little-endian int32 header, uint16 tokens).
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/check.h"
#include "data/shard.h"

namespace rt {
namespace {

constexpr size_t kHeaderBytes = kShardHeaderInts * sizeof(int32_t);

int32_t int32_from_le(const unsigned char* p) {
  return static_cast<int32_t>(uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) |
                              (uint32_t{p[3]} << 24));
}

void int32_to_le(int32_t value, unsigned char* p) {
  const auto u = static_cast<uint32_t>(value);
  for (int b = 0; b < 4; ++b) p[b] = static_cast<unsigned char>(u >> (8 * b));
}

// tokens (n): little-endian on disk <-> host order, in place.
void uint16_le_swap_if_big_endian(std::vector<uint16_t>& tokens) {
  if constexpr (std::endian::native == std::endian::big) {
    for (uint16_t& t : tokens) t = static_cast<uint16_t>((t >> 8) | (t << 8));
  }
}

// Closes the file on every path out of shard_read / shard_write.
struct FileCloser {
  std::FILE* file;
  ~FileCloser() {
    if (file != nullptr) std::fclose(file);
  }
};

}  // namespace

void shard_write(const std::string& path, const std::vector<uint16_t>& tokens) {
  RT_USER_CHECK(tokens.size() <= 0x7fffffffULL, "shard '" + path + "' cannot hold " +
                                                    std::to_string(tokens.size()) +
                                                    " tokens: the header counts at most 2^31-1");
  std::FILE* file = std::fopen(path.c_str(), "wb");
  if (file == nullptr) throw UserError("cannot write shard '" + path + "': " + std::strerror(errno));
  FileCloser closer{file};
  unsigned char header[kHeaderBytes] = {};
  int32_to_le(kShardMagic, header);
  int32_to_le(kShardVersion, header + 4);
  int32_to_le(static_cast<int32_t>(tokens.size()), header + 8);
  std::vector<uint16_t> le = tokens;
  uint16_le_swap_if_big_endian(le);
  bool ok = std::fwrite(header, 1, kHeaderBytes, file) == kHeaderBytes;
  // (fwrite's buffer may not be null, as an empty vector's data() is.)
  ok = ok && (le.empty() || std::fwrite(le.data(), sizeof(uint16_t), le.size(), file) == le.size());
  closer.file = nullptr;
  ok = (std::fclose(file) == 0) && ok;
  if (!ok) throw UserError("cannot write shard '" + path + "': " + std::strerror(errno));
}

std::vector<uint16_t> shard_read(const std::string& path, int64_t vocab_size) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) throw UserError("cannot read shard '" + path + "' (data.path): " + std::strerror(errno));
  FileCloser closer{file};
  const std::string name = "shard '" + path + "'";

  unsigned char header[kHeaderBytes];
  const size_t header_got = std::fread(header, 1, kHeaderBytes, file);
  if (std::ferror(file)) throw UserError("cannot read " + name + " (data.path): " + std::strerror(errno));
  RT_USER_CHECK(header_got == kHeaderBytes, name + " is only " + std::to_string(header_got) +
                                                " bytes, shorter than the 1024-byte header of an llm.c token shard");
  const int32_t magic = int32_from_le(header);
  const int32_t version = int32_from_le(header + 4);
  const int32_t count = int32_from_le(header + 8);
  RT_USER_CHECK(magic == kShardMagic, name + " has magic " + std::to_string(magic) + ", expected " +
                                          std::to_string(kShardMagic) + " (llm.c token shard)");
  RT_USER_CHECK(version == kShardVersion,
                name + " has version " + std::to_string(version) + ", expected " + std::to_string(kShardVersion) +
                    " (llm.c uint16 token shard; version 2 uint32 shards are not supported)");
  RT_USER_CHECK(count >= 0, name + " has a negative token count " + std::to_string(count) + " in its header");

  // The file's size must match the header's count before the count sizes anything (a corrupt count would otherwise
  // allocate up to 4 GiB).
  RT_USER_CHECK(std::fseek(file, 0, SEEK_END) == 0, "cannot read " + name + " (data.path): " + std::strerror(errno));
  const long end = std::ftell(file);
  RT_USER_CHECK(end >= 0 && std::fseek(file, static_cast<long>(kHeaderBytes), SEEK_SET) == 0,
                "cannot read " + name + " (data.path): " + std::strerror(errno));
  const uint64_t held = (static_cast<uint64_t>(end) - kHeaderBytes) / sizeof(uint16_t);
  RT_USER_CHECK(held >= static_cast<uint64_t>(count), name + " is truncated: its header says " + std::to_string(count) +
                                                          " tokens but the file holds " + std::to_string(held));
  RT_USER_CHECK(static_cast<uint64_t>(end) == kHeaderBytes + 2 * static_cast<uint64_t>(count),
                name + " is longer than the 1024-byte header plus the " + std::to_string(count) +
                    " tokens its header declares (llm.c token shard)");

  std::vector<uint16_t> tokens(static_cast<size_t>(count));  // (N)
  const size_t got = std::fread(tokens.data(), sizeof(uint16_t), tokens.size(), file);
  if (std::ferror(file)) throw UserError("cannot read " + name + " (data.path): " + std::strerror(errno));
  RT_USER_CHECK(got == tokens.size(), name + " is truncated: its header says " + std::to_string(count) +
                                          " tokens but the file holds " + std::to_string(got));
  uint16_le_swap_if_big_endian(tokens);
  for (size_t i = 0; i < tokens.size(); ++i) {
    RT_USER_CHECK(tokens[i] < vocab_size, name + " has token " + std::to_string(tokens[i]) + " at position " +
                                              std::to_string(i) + " but model.vocab_size is " +
                                              std::to_string(vocab_size) + "; set model.vocab_size >= " +
                                              std::to_string(tokens[i] + 1) + " or re-tokenize");
  }
  return tokens;
}

}  // namespace rt
