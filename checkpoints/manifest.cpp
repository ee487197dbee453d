// manifest.pb: protobuf encoding with a trailing self-checksum, and conversion to and from CheckpointInfo.
#include "checkpoints/manifest.h"

#include <xxhash.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "core/check.h"

namespace rt {

namespace {
constexpr unsigned char kChecksumTag = (15 << 3) | 1;  // field 15, wire type 64-bit
constexpr size_t kChecksumBytes = 9;
}  // namespace

std::string hex64(uint64_t value) {
  char text[24];
  std::snprintf(text, sizeof text, "0x%016" PRIx64, value);
  return text;
}

std::string manifest_encode(const checkpoint::Manifest& manifest) {
  checkpoint::Manifest body = manifest;
  body.clear_manifest_xxh3();
  std::string bytes;
  RT_CHECK(body.SerializeToString(&bytes), "cannot serialise the checkpoint manifest");
  const uint64_t hash = XXH3_64bits(bytes.data(), bytes.size());
  bytes.push_back(static_cast<char>(kChecksumTag));
  for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<char>((hash >> (8 * i)) & 0xff));
  return bytes;
}

checkpoint::Manifest manifest_decode(const std::string& bytes, const std::string& what) {
  auto corrupt = [&](const std::string& why) { return UserError(what + " is corrupt: " + why); };
  if (bytes.size() < kChecksumBytes || static_cast<unsigned char>(bytes[bytes.size() - kChecksumBytes]) != kChecksumTag)
    throw corrupt("it does not end with its checksum (truncated?)");
  const size_t body = bytes.size() - kChecksumBytes;
  uint64_t stored = 0;
  for (int i = 0; i < 8; ++i) stored |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[body + 1 + i])) << (8 * i);
  const uint64_t actual = XXH3_64bits(bytes.data(), body);
  if (actual != stored)
    throw corrupt("its checksum is " + hex64(actual) + " but it records " + hex64(stored));
  checkpoint::Manifest manifest;
  if (!manifest.ParseFromString(bytes)) throw corrupt("it does not parse as a checkpoint manifest");
  if (manifest.format_version() != kCheckpointFormatVersion)
    throw UserError(what + " has checkpoint format version " + std::to_string(manifest.format_version()) +
                    "; this ringtrain reads version " + std::to_string(kCheckpointFormatVersion));
  // Counters the trainer computes with: each from 0 to 2^53 (what a double holds exactly; far past any real run).
  constexpr int64_t kMaxCount = int64_t{1} << 53;
  const std::pair<const char*, int64_t> counts[] = {
      {"step", manifest.step()},
      {"tokens_seen", manifest.tokens_seen()},
      {"optimizer_step", manifest.optimizer_step()},
      {"data.next_sequence", manifest.data().next_sequence()},
      {"data.sequences_per_step", manifest.data().sequences_per_step()}};
  for (const auto& [field, value] : counts)
    if (value < 0 || value > kMaxCount)
      throw corrupt(std::string(field) + " is " + std::to_string(value) + ", not a count from 0 to 2^53");
  const checkpoint::MeshLayout& mesh = manifest.mesh();
  if (mesh.world_size() < 1 || mesh.cp() < 1 || mesh.dp() < 1 || mesh.ulysses() < 0)
    throw corrupt("its mesh (world_size " + std::to_string(mesh.world_size()) + ", cp " + std::to_string(mesh.cp()) +
                  ", dp " + std::to_string(mesh.dp()) + ", ulysses " + std::to_string(mesh.ulysses()) +
                  ") is not one of 1 or more ranks");
  return manifest;
}

void manifest_set_info(checkpoint::Manifest& m, const CheckpointInfo& info) {
  m.set_format_version(kCheckpointFormatVersion);
  m.set_producer("ringtrain");
  m.set_config_yaml(info.config_yaml);
  m.set_step(info.step);
  m.set_tokens_seen(info.tokens_seen);
  m.mutable_data()->set_task(info.data_task);
  m.mutable_data()->set_next_sequence(info.next_sequence);
  m.mutable_data()->set_sequences_per_step(info.sequences_per_step);
  for (const CheckpointRng& r : info.rng) {
    checkpoint::RngState* s = m.add_rng();
    s->set_name(r.name);
    s->set_algorithm(r.algorithm);
    s->set_seed(r.seed);
    s->set_counter(r.counter);
  }
  m.mutable_mesh()->set_world_size(info.world_size);
  m.mutable_mesh()->set_cp(info.cp);
  m.mutable_mesh()->set_dp(info.dp);
  m.mutable_mesh()->set_ulysses(info.ulysses);
  m.mutable_mesh()->set_sharding(info.sharding);
  m.set_optimizer_step(info.optimizer_step);
  m.set_created_utc(info.created_utc);
}

CheckpointInfo manifest_info(const checkpoint::Manifest& m) {
  CheckpointInfo info;
  info.config_yaml = m.config_yaml();
  info.step = m.step();
  info.tokens_seen = m.tokens_seen();
  info.data_task = m.data().task();
  info.next_sequence = m.data().next_sequence();
  info.sequences_per_step = m.data().sequences_per_step();
  for (const checkpoint::RngState& s : m.rng()) info.rng.push_back({s.name(), s.algorithm(), s.seed(), s.counter()});
  info.world_size = m.mesh().world_size();
  info.cp = m.mesh().cp();
  info.dp = m.mesh().dp();
  info.ulysses = std::max(1, m.mesh().ulysses());
  info.sharding = m.mesh().sharding();
  info.optimizer_step = m.optimizer_step();
  info.created_utc = m.created_utc();
  return info;
}

}  // namespace rt
