// Checkpoints: one directory per saved step (manifest.pb, model.safetensors + config.json, optimizer.safetensors),
// written atomically and verified on every read. The format is docs/checkpoint-format.md.
#pragma once
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace rt {

// A named f32 tensor in host memory (a view: the caller keeps the data alive).
struct HostTensor {
  std::string name;
  std::vector<int64_t> shape;
  const float* data = nullptr;  // (numel(shape)) row-major
};

// A counter-based random stream: (algorithm, seed, counter) reproduces it.
struct CheckpointRng {
  std::string name, algorithm;
  uint64_t seed = 0, counter = 0;
};

// Everything manifest.pb records besides the file and tensor index.
struct CheckpointInfo {
  int64_t step = 0;                // optimizer steps completed
  int64_t tokens_seen = 0;         // over all ranks
  int64_t optimizer_step = 0;      // AdamW's counter
  std::string data_task;
  int64_t next_sequence = 0;       // data cursor: global sequences consumed
  int64_t sequences_per_step = 0;  // train.batch_size that consumed them
  std::vector<CheckpointRng> rng;
  int world_size = 1, cp = 1, dp = 1, ulysses = 1;
  std::string sharding;
  std::string config_yaml;         // the resolved config
  std::string created_utc;         // set by checkpoint_write
};

struct CheckpointContents {
  CheckpointInfo info;
  std::string hf_config_json;         // config.json (a Hugging Face LlamaConfig)
  std::vector<HostTensor> model;      // -> model.safetensors, Hugging Face Llama names
  std::vector<HostTensor> optimizer;  // -> optimizer.safetensors, with "step" (I64) = info.optimizer_step
};

struct CheckpointSaved {
  std::string dir;
  uint64_t bytes = 0;
  double seconds = 0;
  std::vector<std::string> removed;  // older checkpoints deleted to keep checkpoint.keep
};

inline constexpr const char* kModelFile = "model.safetensors";
inline constexpr const char* kOptimizerFile = "optimizer.safetensors";

// "step_00000100": the directory name of the checkpoint of a step.
std::string checkpoint_dir_name(int64_t step);

// Writes `contents` as root/step_<step>: the files go into a hidden temporary directory and are fsynced, the
// directory is renamed into place, then root/latest is replaced atomically to name it. Only then are the
// oldest checkpoints beyond `keep` (0 keeps all) and leftover temporary directories removed.
// Throws rt::UserError when the file system refuses.
CheckpointSaved checkpoint_write(const std::string& root, const CheckpointContents& contents, int64_t keep);

// A checkpoint read into memory after every checksum was verified.
class Checkpoint {
 public:
  const std::string& dir() const { return dir_; }
  const CheckpointInfo& info() const { return info_; }
  // Tensors of one file (kModelFile, kOptimizerFile): name and shape, in file order.
  std::vector<std::pair<std::string, std::vector<int64_t>>> tensors(const std::string& file) const;
  // A tensor's f32 data, or nullptr when the file has no F32 tensor of that name.
  const float* f32(const std::string& file, const std::string& name) const;

 private:
  friend Checkpoint checkpoint_read(const std::string& dir);
  struct Entry {
    std::vector<int64_t> shape;
    std::string dtype;
    uint64_t offset = 0;
  };
  std::string dir_;
  CheckpointInfo info_;
  std::map<std::string, std::string> files_;  // name -> bytes
  std::map<std::string, std::vector<std::pair<std::string, Entry>>> tensors_;  // file -> tensors in order
};

// Reads `dir` and verifies it: the manifest's own checksum, every file's size and checksum, every tensor's
// checksum, and that the safetensors headers agree with the manifest. Throws rt::UserError naming the
// checkpoint, the file and (where one is at fault) the tensor.
Checkpoint checkpoint_read(const std::string& dir);

// The manifest of checkpoint `dir` alone, its own checksum verified; the other files are not read. Throws
// rt::UserError naming the manifest when it is missing or corrupt.
CheckpointInfo checkpoint_info_read(const std::string& dir);

// Whether `path` is one checkpoint (holds manifest.pb) rather than a directory of them.
bool checkpoint_is_one(const std::string& path);

// The checkpoints under `root` to try when resuming, best first: the one `latest` names, then those of
// earlier steps, newest first (every one, newest first, when `latest` is missing or names nothing).
// Temporary directories of interrupted writes are never listed.
std::vector<std::string> checkpoint_candidates(const std::string& root);

// Prints the manifest of `path` (a checkpoint, or a directory of them: its latest) and verifies every file and
// tensor checksum, marking each ok or BAD. Throws rt::UserError naming the first bad file and tensor.
void checkpoint_inspect(const std::string& path, std::FILE* out);

}  // namespace rt
