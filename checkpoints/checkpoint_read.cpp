// Reading a checkpoint: verify the manifest, every file and every tensor, then serve tensors by name.
#include <xxhash.h>

#include <algorithm>
#include <filesystem>

#include "checkpoints/atomic_dir.h"
#include "checkpoints/checkpoint.h"
#include "checkpoints/manifest.h"
#include "checkpoints/safetensors.h"
#include "core/check.h"

namespace rt {
namespace {

namespace fs = std::filesystem;

// Whether the tensor's bytes lie inside a file of `size` bytes (offset + length may not wrap around).
bool inside(const checkpoint::TensorEntry& t, uint64_t size) { return t.offset() <= size && t.length() <= size - t.offset(); }

std::string byte_range(const checkpoint::TensorEntry& t) {
  return "bytes " + std::to_string(t.offset()) + ".." + std::to_string(t.offset() + t.length());
}

// Problems of a safetensors file whose bytes verified: its header must agree with the manifest.
void check_header(const std::string& path, const std::string& bytes, const std::string& file,
                  const checkpoint::Manifest& manifest, std::vector<std::string>& problems) {
  SafetensorsIndex index;
  try {
    index = safetensors_parse(bytes.data(), bytes.size(), path);
  } catch (const UserError& e) {
    problems.push_back(e.what());
    return;
  }
  size_t listed = 0;
  for (const checkpoint::TensorEntry& t : manifest.tensors()) {
    if (t.file() != file) continue;
    ++listed;
    auto it = std::find_if(index.tensors.begin(), index.tensors.end(), [&](const auto& e) { return e.name == t.name(); });
    if (it == index.tensors.end() || it->offset != t.offset() || it->length != t.length() || it->dtype != t.dtype() ||
        it->shape != std::vector<int64_t>(t.shape().begin(), t.shape().end()))
      problems.push_back(path + ": its header and the manifest disagree about tensor " + t.name());
  }
  if (listed != index.tensors.size())
    problems.push_back(path + " holds " + std::to_string(index.tensors.size()) + " tensors but the manifest lists " +
                       std::to_string(listed));
}

}  // namespace

Verification checkpoint_verify(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw UserError("checkpoint '" + dir + "' does not exist or is not a directory");
  const std::string manifest_path = (fs::path(dir) / kManifestFile).string();
  if (!fs::exists(manifest_path, ec))
    throw UserError("'" + dir + "' is not a checkpoint: it has no " + kManifestFile);
  Verification v;
  v.manifest = manifest_decode(file_read(manifest_path), manifest_path);
  const checkpoint::Manifest& m = v.manifest;
  v.file_ok.assign(static_cast<size_t>(m.files_size()), false);
  v.tensor_ok.assign(static_cast<size_t>(m.tensors_size()), false);
  for (const char* required : {kModelFile, kHfConfigFile, kOptimizerFile})
    if (std::none_of(m.files().begin(), m.files().end(), [&](const auto& f) { return f.name() == required; }))
      v.problems.push_back(manifest_path + " lists no " + required);

  for (int i = 0; i < m.files_size(); ++i) {
    const checkpoint::FileEntry& f = m.files(i);
    const std::string path = (fs::path(dir) / f.name()).string();
    std::string bytes;
    try {
      bytes = file_read(path);
    } catch (const UserError& e) {
      v.problems.push_back(e.what());
      continue;
    }
    bool ok = true;
    if (bytes.size() != f.size()) {
      std::string why = path + " has " + std::to_string(bytes.size()) + " bytes but the manifest records " +
                        std::to_string(f.size()) + (bytes.size() < f.size() ? ": it is truncated" : ": it has grown");
      for (const checkpoint::TensorEntry& t : m.tensors())
        if (t.file() == f.name() && !inside(t, bytes.size())) {
          why += "; tensor " + t.name() + " (" + byte_range(t) + ") is incomplete";
          break;
        }
      v.problems.push_back(why);
      ok = false;
    }
    for (int j = 0; j < m.tensors_size(); ++j) {
      const checkpoint::TensorEntry& t = m.tensors(j);
      if (t.file() != f.name() || !inside(t, bytes.size())) continue;
      const uint64_t hash = XXH3_64bits(bytes.data() + t.offset(), t.length());
      v.tensor_ok[j] = hash == t.xxh3();
      if (!v.tensor_ok[j]) {
        v.problems.push_back(path + ": tensor " + t.name() + " (" + byte_range(t) + ") fails its checksum: xxh3 " +
                             hex64(hash) + " but the manifest records " + hex64(t.xxh3()) + "; the file is corrupt");
        ok = false;
      }
    }
    if (ok) {
      const uint64_t hash = XXH3_64bits(bytes.data(), bytes.size());
      if (hash != f.xxh3()) {
        v.problems.push_back(path + " fails its checksum: xxh3 " + hex64(hash) + " but the manifest records " +
                             hex64(f.xxh3()) + " (every tensor verifies: the header is corrupt)");
        ok = false;
      }
    }
    if (ok && f.name().ends_with(".safetensors")) {
      const size_t before = v.problems.size();
      check_header(path, bytes, f.name(), m, v.problems);
      ok = v.problems.size() == before;
    }
    v.file_ok[i] = ok;
    v.files[f.name()] = std::move(bytes);
  }
  for (int j = 0; j < m.tensors_size(); ++j)
    if (std::none_of(m.files().begin(), m.files().end(), [&](const auto& f) { return f.name() == m.tensors(j).file(); }))
      v.problems.push_back(manifest_path + ": tensor " + m.tensors(j).name() + " is in " + m.tensors(j).file() +
                           ", a file the manifest does not list");
  return v;
}

Checkpoint checkpoint_read(const std::string& dir) {
  Verification v = checkpoint_verify(dir);
  if (!v.problems.empty()) {
    std::string message = v.problems[0];
    if (v.problems.size() > 1)
      message += " (and " + std::to_string(v.problems.size() - 1) + " more; `ringtrain inspect " + dir + "` lists them)";
    throw UserError(message);
  }
  Checkpoint c;
  c.dir_ = dir;
  c.info_ = manifest_info(v.manifest);
  c.files_ = std::move(v.files);
  for (const checkpoint::TensorEntry& t : v.manifest.tensors())
    c.tensors_[t.file()].push_back({t.name(), {std::vector<int64_t>(t.shape().begin(), t.shape().end()), t.dtype(), t.offset()}});
  return c;
}

CheckpointInfo checkpoint_info_read(const std::string& dir) {
  const std::string manifest_path = (fs::path(dir) / kManifestFile).string();
  return manifest_info(manifest_decode(file_read(manifest_path), manifest_path));
}

std::vector<std::pair<std::string, std::vector<int64_t>>> Checkpoint::tensors(const std::string& file) const {
  std::vector<std::pair<std::string, std::vector<int64_t>>> out;
  auto it = tensors_.find(file);
  if (it != tensors_.end())
    for (const auto& [name, entry] : it->second) out.emplace_back(name, entry.shape);
  return out;
}

const float* Checkpoint::f32(const std::string& file, const std::string& name) const {
  auto it = tensors_.find(file);
  if (it == tensors_.end()) return nullptr;
  for (const auto& [n, entry] : it->second)
    if (n == name && entry.dtype == "F32") return reinterpret_cast<const float*>(files_.at(file).data() + entry.offset);
  return nullptr;
}

}  // namespace rt
