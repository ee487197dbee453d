// The run configuration: one struct with defaults, read from YAML, overridden by --set, validated with reasons.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace rt {

// model.rope_scaling: Hugging Face's rope_scaling / rope_parameters keys (docs/training.md, "RoPE scaling").
struct RopeScalingConfig {
  std::string rope_type = "default";          // default | linear | dynamic | yarn | llama3
  double factor = 1.0;                        // context extension factor (linear, dynamic, yarn, llama3)
  int64_t original_max_position_embeddings = 0;  // the pretraining length (dynamic, yarn, llama3)
  double low_freq_factor = 1.0;               // llama3
  double high_freq_factor = 4.0;              // llama3
  double beta_fast = 32.0;                    // yarn
  double beta_slow = 1.0;                     // yarn
  double attention_factor = 0.0;              // yarn: cos/sin scale; 0 = HF's default 0.1 ln(factor) + 1
  bool truncate = true;                       // yarn: round the correction range outwards
  bool operator==(const RopeScalingConfig&) const = default;
};

struct ModelConfig {
  int64_t hidden_size = 256;
  int64_t num_hidden_layers = 4;
  int64_t num_attention_heads = 4;
  int64_t num_key_value_heads = 4;
  int64_t intermediate_size = 1024;
  int64_t vocab_size = 256;
  double rope_theta = 10000.0;
  RopeScalingConfig rope_scaling;
  double rms_norm_eps = 1e-5;
  bool tie_word_embeddings = true;
  double initializer_range = 0.02;
  double embedding_init_std = 0;  // the token embedding's normal std; 0 = initializer_range (HF Llama), 1 = torchtitan
  int64_t head_dim() const { return hidden_size / num_attention_heads; }
  bool operator==(const ModelConfig&) const = default;
};

struct TrainConfig {
  int64_t seq_len = 1024;
  int64_t batch_size = 8;        // sequences per optimizer step, over all data-parallel ranks
  int64_t micro_batch_size = 1;  // sequences per forward/backward on one rank; the rest is accumulation
  int64_t steps = 300;
  double lr = 3e-3;
  double min_lr = 3e-4;          // cosine decays to this
  int64_t warmup_steps = 20;
  double weight_decay = 0.1;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double grad_clip = 1.0;        // max global gradient norm; 0 disables clipping
  int64_t seed = 1234;
  int64_t threads = 0;           // OpenMP threads per rank; 0 = all cores / ranks on the node
  std::string device = "cpu";    // cpu | cuda (one GPU per rank: the node-local rank's)
  std::string precision = "fp32";  // fp32 | bf16 (GEMM inputs in bf16, fp32 accumulation; docs/training.md)
  std::string stages;              // YAML list of length stages (trainer/stages.h); "" = one stage of train.steps
  std::string recompute = "none";  // none | full: each layer keeps only its input and recomputes its forward
  int64_t eval_every = 0;          // evaluate batch_size held-out sequences every N steps (0 = never)
  bool operator==(const TrainConfig&) const = default;
};

struct DataConfig {
  std::string task = "copy";     // copy | recall | passkey | text | shards
  std::string path;              // a file, directory or glob, or a YAML list of them kept as its text (data_paths)
  int64_t eot = -1;              // the token that begins each document (shards; text: put before each file); -1 none
  bool document_mask = false;    // attention stays inside each document (block-diagonal causal)
  bool reset_positions = false;  // RoPE positions restart at 0 at each document start
  std::string train_on = "all";  // all | long_range: the labels trained on (long_range: only the task's answers)
  bool operator==(const DataConfig&) const = default;
};

struct LogConfig {
  std::string dir = "runs/default";
  int64_t every = 1;             // print and record every N steps
  double peak_gflops = 441.0;    // fp32 peak GFLOP/s of all the cores the job uses, for the "% peak" column
  bool tensorboard = true;       // also write the metrics as TensorBoard event files in the run directory
  bool operator==(const LogConfig&) const = default;
};

struct ParallelConfig {
  int64_t cp = 1;                // context-parallel ranks (ring attention)
  int64_t dp = 1;                // data-parallel replicas
  int64_t ulysses = 1;           // Ulysses ranks per ring position (all-to-all over heads), innermost
  std::string sharding = "zigzag";  // zigzag | contiguous
  int64_t check_every = 100;     // compare parameters across ranks every N steps (0 = only at start)
  double comm_timeout_s = 300;   // a collective or ring exchange that waits this long ends the job
  bool operator==(const ParallelConfig&) const = default;
};

struct CheckpointConfig {
  std::string dir;               // "" = <log.dir>/checkpoints
  int64_t every = 100;           // save every N steps; 0 = only at the end (and on SIGTERM / SIGINT)
  int64_t keep = 3;              // newest checkpoints kept; 0 = all
  bool operator==(const CheckpointConfig&) const = default;
};

struct Config {
  ModelConfig model;
  TrainConfig train;
  DataConfig data;
  LogConfig log;
  ParallelConfig parallel;
  CheckpointConfig checkpoint;
  bool operator==(const Config&) const = default;
};

// Where a key's value came from, for error messages: "configs/default.yaml:12" or "--set".
using ConfigSources = std::map<std::string, std::string>;

// Reads a YAML file over the defaults. Throws rt::UserError naming file, line and key for an unknown key
// (with the nearest valid key), a wrong type or a malformed file.
Config config_load(const std::string& path, ConfigSources* sources = nullptr);
// The same for YAML text; `origin` names it in errors where config_load names the file ("DIR/manifest.pb").
Config config_parse(const std::string& text, const std::string& origin, ConfigSources* sources = nullptr);
// Applies one "section.key=value" override. Throws rt::UserError as above, naming --set.
void config_set(Config& config, const std::string& assignment, ConfigSources* sources = nullptr);
// Checks values and relations between keys; throws rt::UserError with the reason and what would be valid.
void config_validate(const Config& config, const ConfigSources& sources = {});
// The resolved config as YAML, every key, in definition order.
std::string config_to_yaml(const Config& config);
// data.path as a list of entries: a YAML list's items, else the one path ("" gives none). Throws rt::UserError for a
// list that does not parse or holds anything but file names.
std::vector<std::string> data_paths(const DataConfig& data);
// One key's value ("parallel.cp" -> "2"; strings unquoted), for scripts; an unknown key throws rt::UserError.
std::string config_get(const Config& config, const std::string& key);
// Every key with its type, default and meaning, for --help.
std::string config_help();
// All key names in definition order.
std::vector<std::string> config_keys();

// One key definition. The table of them (trainer/config_keys.cpp) is the single source of truth for
// parsing, --set, --help and config_to_yaml; the value's type is the alternative `field` returns.
using ConfigField = std::variant<int64_t*, double*, bool*, std::string*>;
struct ConfigKey {
  const char* name;                 // "section.key", the struct member's path
  const char* help;                 // one line: what it means
  ConfigField (*field)(Config&);    // the member this key reads and writes
};
const std::vector<ConfigKey>& config_key_table();

}  // namespace rt
