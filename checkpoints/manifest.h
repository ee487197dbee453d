// Internal to checkpoints/: manifest.pb encoding with its trailing checksum, directory listing and verification.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "checkpoints/checkpoint.h"
#include "checkpoints/checkpoint.pb.h"

namespace rt {

inline constexpr uint32_t kCheckpointFormatVersion = 1;
inline constexpr const char* kManifestFile = "manifest.pb";
inline constexpr const char* kHfConfigFile = "config.json";

// The manifest's bytes: the message (without manifest_xxh3), then field 15 = XXH3-64 of those bytes.
std::string manifest_encode(const checkpoint::Manifest& manifest);
// Parses bytes written by manifest_encode after checking the trailing checksum; throws rt::UserError naming `what`.
checkpoint::Manifest manifest_decode(const std::string& bytes, const std::string& what);

void manifest_set_info(checkpoint::Manifest& manifest, const CheckpointInfo& info);
CheckpointInfo manifest_info(const checkpoint::Manifest& manifest);

// The result of checking a checkpoint directory against its manifest.
struct Verification {
  checkpoint::Manifest manifest;
  std::map<std::string, std::string> files;  // name -> bytes, for files that could be read
  std::vector<bool> file_ok, tensor_ok;      // per manifest.files() / manifest.tensors() entry
  std::vector<std::string> problems;         // one sentence each, naming the file (and tensor)
};

// Reads `dir` and checks every file and tensor. Throws rt::UserError only when the manifest itself is
// missing or corrupt; every other fault is listed in `problems`.
Verification checkpoint_verify(const std::string& dir);

// The checkpoints directly under `root` (directories named step_<digits>) as (step, path), by step ascending.
std::vector<std::pair<int64_t, std::string>> checkpoint_list(const std::string& root);

// "0x0123456789abcdef"
std::string hex64(uint64_t value);

}  // namespace rt
