// Fuzz target: manifest.pb (checkpoints/manifest.h), its trailing checksum, then the fields the reader takes from it.
// Input: one mode byte, then the file. Mode bit 0 set: the rest is the message alone and the target appends its
// correct checksum, so that the fuzzer's changes reach the protobuf decoder and the checks after it.
#include <xxhash.h>

#include "checkpoints/manifest.h"
#include "tests/fuzz/fuzz_targets.h"

namespace rt::fuzz {

std::string manifest_with_checksum(std::string_view body) {
  std::string bytes(body);
  const uint64_t hash = XXH3_64bits(bytes.data(), bytes.size());
  bytes.push_back(static_cast<char>((15 << 3) | 1));  // field 15, 64-bit: manifest_xxh3
  for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<char>((hash >> (8 * i)) & 0xff));
  return bytes;
}

bool manifest_target(const uint8_t* data, size_t size) {
  if (size == 0) return false;
  const std::string_view rest = as_text(data + 1, size - 1);
  const std::string bytes = (data[0] & 1) ? manifest_with_checksum(rest) : std::string(rest);
  return result_or_user_error([&] {
    const checkpoint::Manifest manifest = manifest_decode(bytes, "fuzz/manifest.pb");
    const CheckpointInfo info = manifest_info(manifest);
    // Accepted: encoding what was decoded reads back to the same information.
    const checkpoint::Manifest again = manifest_decode(manifest_encode(manifest), "fuzz/manifest.pb (re-encoded)");
    const CheckpointInfo info_again = manifest_info(again);
    if (info_again.step != info.step || info_again.config_yaml != info.config_yaml ||
        info_again.world_size != info.world_size || again.tensors_size() != manifest.tensors_size() ||
        again.files_size() != manifest.files_size())
      wrong_result("a manifest that does not survive encoding again");
  });
}

}  // namespace rt::fuzz
