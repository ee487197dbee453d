// Writing a checkpoint: safetensors, config.json and manifest.pb into a temporary directory, then commit and prune.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>

#include "checkpoints/atomic_dir.h"
#include "checkpoints/checkpoint.h"
#include "checkpoints/manifest.h"
#include "checkpoints/safetensors.h"
#include "core/check.h"
#include "core/tensor.h"
#include "core/timer.h"

namespace rt {
namespace {

namespace fs = std::filesystem;

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

// Test hook (tests/checkpoints): RINGTRAIN_TEST_KILL_DURING_SAVE=<step> makes the process SIGKILL itself
// halfway through optimizer.safetensors of that step's checkpoint, as a crash or `kill -9` would.
bool kill_requested(int64_t step) {
  const char* env = std::getenv("RINGTRAIN_TEST_KILL_DURING_SAVE");
  return env && std::atoll(env) == step;
}

void add_file_entry(checkpoint::Manifest& manifest, const std::string& name, uint64_t size, uint64_t hash) {
  checkpoint::FileEntry* f = manifest.add_files();
  f->set_name(name);
  f->set_size(size);
  f->set_xxh3(hash);
}

// Writes dir/file as safetensors and records the file and each tensor in the manifest; returns its size.
uint64_t write_safetensors(const std::string& dir, const std::string& file, const std::vector<SafetensorsTensor>& tensors,
                           const std::map<std::string, std::string>& metadata, checkpoint::Manifest& manifest,
                           bool kill_midway) {
  const std::string header = safetensors_header(tensors, metadata);
  SyncedFile out((fs::path(dir) / file).string());
  out.write(header.data(), header.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (kill_midway && i == tensors.size() / 2) ::raise(SIGKILL);
    const SafetensorsTensor& t = tensors[i];
    checkpoint::TensorEntry* e = manifest.add_tensors();
    e->set_name(t.name);
    for (int64_t d : t.shape) e->add_shape(d);
    e->set_dtype(t.dtype);
    e->set_file(file);
    e->set_offset(out.size());
    e->set_length(t.bytes);
    e->set_xxh3(XXH3_64bits(t.data, t.bytes));
    out.write(t.data, t.bytes);
  }
  const uint64_t size = out.size();
  add_file_entry(manifest, file, size, out.finish());
  return size;
}

std::vector<SafetensorsTensor> as_f32(const std::vector<HostTensor>& tensors) {
  std::vector<SafetensorsTensor> out;
  for (const HostTensor& t : tensors)
    out.push_back({t.name, "F32", t.shape, t.data, static_cast<size_t>(shape_numel(t.shape)) * sizeof(float)});
  return out;
}

// Removes checkpoints of steps before `step` beyond the newest keep-1 of them (keep 0: none), and leftovers of
// interrupted writes. Checkpoints of later steps (from a run resumed from an earlier one) are left alone.
std::vector<std::string> prune(const std::string& root, int64_t step, int64_t keep) {
  std::vector<std::string> removed;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(".tmp_step_", 0) == 0 || name.rfind(".replaced_step_", 0) == 0) fs::remove_all(entry.path(), ec);
  }
  if (keep <= 0) return removed;
  std::vector<std::pair<int64_t, std::string>> older;
  for (const auto& [s, dir] : checkpoint_list(root))
    if (s < step) older.emplace_back(s, dir);
  const size_t kept = static_cast<size_t>(keep - 1);
  for (size_t i = 0; i + kept < older.size(); ++i) {  // ascending: the oldest first
    fs::remove_all(older[i].second, ec);
    if (!ec) removed.push_back(older[i].second);
  }
  return removed;
}

}  // namespace

std::string checkpoint_dir_name(int64_t step) {
  char name[32];
  std::snprintf(name, sizeof name, "step_%08lld", static_cast<long long>(step));
  return name;
}

CheckpointSaved checkpoint_write(const std::string& root, const CheckpointContents& contents, int64_t keep) {
  Timer timer;
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) throw UserError("cannot create checkpoint.dir '" + root + "': " + ec.message());
  const int64_t step = contents.info.step;
  const std::string name = checkpoint_dir_name(step);
  const std::string temp = (fs::path(root) / (".tmp_" + name)).string();
  const std::string final = (fs::path(root) / name).string();
  fs::remove_all(temp, ec);
  if (!fs::create_directory(temp, ec) || ec)
    throw UserError("cannot create '" + temp + "': " + ec.message() + "; set checkpoint.dir to a writable directory");

  CheckpointInfo info = contents.info;
  info.created_utc = utc_now();
  checkpoint::Manifest manifest;
  manifest_set_info(manifest, info);
  const std::string step_text = std::to_string(step);
  uint64_t bytes = write_safetensors(temp, kModelFile, as_f32(contents.model),
                                     {{"format", "pt"}, {"producer", "ringtrain"}, {"step", step_text}}, manifest, false);
  {
    SyncedFile config((fs::path(temp) / kHfConfigFile).string());
    config.write(contents.hf_config_json.data(), contents.hf_config_json.size());
    bytes += config.size();
    const uint64_t size = config.size();
    add_file_entry(manifest, kHfConfigFile, size, config.finish());
  }
  std::vector<SafetensorsTensor> optimizer = as_f32(contents.optimizer);
  const int64_t optimizer_step = info.optimizer_step;
  optimizer.push_back({"step", "I64", {}, &optimizer_step, sizeof optimizer_step});
  bytes += write_safetensors(temp, kOptimizerFile, optimizer,
                             {{"format", "pt"}, {"optimizer", "AdamW"}, {"step", std::to_string(optimizer_step)}},
                             manifest, kill_requested(step));
  {
    const std::string encoded = manifest_encode(manifest);
    SyncedFile out((fs::path(temp) / kManifestFile).string());
    out.write(encoded.data(), encoded.size());
    out.finish();
    bytes += encoded.size();
  }
  dir_commit(temp, final);
  file_replace_atomically((fs::path(root) / "latest").string(), name + "\n");

  CheckpointSaved saved;
  saved.dir = final;
  saved.bytes = bytes;
  saved.removed = prune(root, step, keep);
  saved.seconds = timer.seconds();
  return saved;
}

}  // namespace rt
