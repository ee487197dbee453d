// `ringtrain inspect PATH`: print a checkpoint's manifest and verify every file and tensor checksum.
#include <algorithm>
#include <filesystem>

#include "checkpoints/checkpoint.h"
#include "checkpoints/manifest.h"
#include "core/check.h"

namespace rt {
namespace {

std::string shape_text(const google::protobuf::RepeatedField<int64_t>& shape) {
  std::string out = "[";
  for (int i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

// The checkpoint `path` names: itself, or the latest of a directory of checkpoints.
std::string resolve(const std::string& path) {
  if (checkpoint_is_one(path)) return path;
  std::error_code ec;
  if (!std::filesystem::is_directory(path, ec)) throw UserError("'" + path + "' does not exist or is not a directory");
  std::vector<std::string> candidates = checkpoint_candidates(path);
  if (candidates.empty())
    throw UserError("'" + path + "' is not a checkpoint (no manifest.pb) and holds no step_* checkpoints");
  return candidates.front();
}

}  // namespace

void checkpoint_inspect(const std::string& path, std::FILE* out) {
  const std::string dir = resolve(path);
  const Verification v = checkpoint_verify(dir);
  const checkpoint::Manifest& m = v.manifest;
  std::fprintf(out, "checkpoint  %s\n", dir.c_str());
  std::fprintf(out, "format      %u (%s), written %s\n", m.format_version(), m.producer().c_str(), m.created_utc().c_str());
  std::fprintf(out, "step        %lld (optimizer step %lld), %lld tokens seen\n", static_cast<long long>(m.step()),
               static_cast<long long>(m.optimizer_step()), static_cast<long long>(m.tokens_seen()));
  std::fprintf(out, "data        %s: next global sequence %lld (%lld per step)\n", m.data().task().c_str(),
               static_cast<long long>(m.data().next_sequence()), static_cast<long long>(m.data().sequences_per_step()));
  for (const checkpoint::RngState& r : m.rng())
    std::fprintf(out, "rng         %s: %s seed %llu counter %llu\n", r.name().c_str(), r.algorithm().c_str(),
                 static_cast<unsigned long long>(r.seed()), static_cast<unsigned long long>(r.counter()));
  const std::string ulysses = m.mesh().ulysses() > 1 ? " x ulysses " + std::to_string(m.mesh().ulysses()) : "";
  std::fprintf(out, "mesh        %d ranks = dp %d x cp %d%s, %s sharding\n", m.mesh().world_size(), m.mesh().dp(),
               m.mesh().cp(), ulysses.c_str(), m.mesh().sharding().c_str());
  std::fprintf(out, "config\n");
  std::string config = m.config_yaml();
  for (size_t at = 0; at < config.size();) {
    size_t end = config.find('\n', at);
    if (end == std::string::npos) end = config.size();
    std::fprintf(out, "  %s\n", config.substr(at, end - at).c_str());
    at = end + 1;
  }

  size_t name_width = 4, file_width = 4;
  for (const auto& f : m.files()) file_width = std::max(file_width, f.name().size());
  for (const auto& t : m.tensors()) name_width = std::max(name_width, t.name().size());
  std::fprintf(out, "files\n");
  for (int i = 0; i < m.files_size(); ++i)
    std::fprintf(out, "  %-4s %-*s %12llu bytes  xxh3 %s\n", v.file_ok[i] ? "ok" : "BAD", static_cast<int>(file_width),
                 m.files(i).name().c_str(), static_cast<unsigned long long>(m.files(i).size()), hex64(m.files(i).xxh3()).c_str());
  std::fprintf(out, "tensors\n");
  for (int j = 0; j < m.tensors_size(); ++j) {
    const checkpoint::TensorEntry& t = m.tensors(j);
    std::fprintf(out, "  %-4s %-*s %-*s %-16s %s  offset %llu  length %llu  xxh3 %s\n", v.tensor_ok[j] ? "ok" : "BAD",
                 static_cast<int>(file_width), t.file().c_str(), static_cast<int>(name_width), t.name().c_str(),
                 shape_text(t.shape()).c_str(), t.dtype().c_str(), static_cast<unsigned long long>(t.offset()),
                 static_cast<unsigned long long>(t.length()), hex64(t.xxh3()).c_str());
  }
  if (!v.problems.empty()) {
    std::fprintf(out, "problems\n");
    for (const std::string& p : v.problems) std::fprintf(out, "  %s\n", p.c_str());
    std::fflush(out);
    throw UserError(v.problems[0] + (v.problems.size() > 1 ? " (and " + std::to_string(v.problems.size() - 1) + " more above)" : ""));
  }
  std::fprintf(out, "verified: %d files and %d tensors, every checksum matches\n", m.files_size(), m.tensors_size());
  std::fflush(out);
}

}  // namespace rt
