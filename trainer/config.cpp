// Reads, overrides, checks and prints the run configuration, all driven by the key table in config_keys.cpp.
#include "trainer/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string_view>

#include "core/check.h"
#include "parallel/ulysses_attention.h"

namespace rt {
namespace {

// ---- the table, seen by name ----

std::string section_of(std::string_view name) { return std::string(name.substr(0, name.find('.'))); }
std::string member_of(std::string_view name) {
  size_t dot = name.find('.');
  return dot == std::string_view::npos ? std::string(name) : std::string(name.substr(dot + 1));
}

const ConfigKey* find_key(std::string_view name) {
  for (const ConfigKey& key : config_key_table())
    if (name == key.name) return &key;
  return nullptr;
}

std::vector<std::string> section_names() {
  std::vector<std::string> out;
  for (const ConfigKey& key : config_key_table())
    if (std::find(out.begin(), out.end(), section_of(key.name)) == out.end()) out.push_back(section_of(key.name));
  return out;
}

// A group of keys below a section ("model.rope_scaling"): a YAML map of its own.
bool is_group(const std::string& name) {
  for (const ConfigKey& key : config_key_table())
    if (std::string_view(key.name).starts_with(name + ".")) return true;
  return false;
}

bool is_section(const std::string& name) {
  std::vector<std::string> all = section_names();
  return std::find(all.begin(), all.end(), name) != all.end();
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

const char* type_name(const ConfigField& field) {
  static const char* const names[] = {"integer", "float", "bool", "string"};
  return names[field.index()];
}

// ---- "did you mean" ----

// Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps cost 1.
size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i)
    for (size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1])});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.size()][b.size()];
}

// The candidate nearest to `name`, or "" when none is close enough to be a plausible typo.
std::string nearest(const std::string& name, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = std::max<size_t>(2, name.size() / 4) + 1;
  for (const std::string& candidate : candidates) {
    size_t distance = edit_distance(name, candidate);
    if (distance < best_distance) best = candidate, best_distance = distance;
  }
  return best;
}

// Why `name` is not a key, with the nearest valid one. `top_level`: it was a section name in a YAML file.
std::string unknown_message(const std::string& name, bool top_level) {
  const std::string what = top_level ? "unknown section '" + name + "'" : "unknown key '" + name + "'";
  // The right key in the wrong section (or in none): train.cp -> parallel.cp, seq_len -> train.seq_len.
  for (const ConfigKey& key : config_key_table())
    if (member_of(name) == member_of(key.name) && (top_level || name != key.name))
      return what + "; did you mean '" + key.name + "'" + (top_level ? " (under '" + section_of(key.name) + ":')?" : "?");
  if (top_level) {
    std::string guess = nearest(name, section_names());
    if (!guess.empty()) return what + "; did you mean '" + guess + "'?";
    return what + "; valid sections are " + join(section_names());
  }
  std::string guess = nearest(name, config_keys());
  if (!guess.empty()) return what + "; did you mean '" + guess + "'?";
  std::string section = section_of(name);
  if (!is_section(section) || name.find('.') == std::string::npos)
    return what + "; keys are section.key with sections " + join(section_names());
  std::vector<std::string> members;
  for (const ConfigKey& key : config_key_table())
    if (section_of(key.name) == section) members.push_back(member_of(key.name));
  return what + "; valid keys in '" + section + "' are " + join(members);
}

// ---- values as text ----

// Shortest text that reads back to the same double, always with a '.' so YAML 1.1 readers see a float.
std::string format_float(double value) {
  char buffer[64];
  double magnitude = std::fabs(value);
  auto format = value == 0 || (magnitude >= 1e-4 && magnitude < 1e15) ? std::chars_format::fixed
                                                                       : std::chars_format::scientific;
  std::string text(buffer, std::to_chars(buffer, buffer + sizeof buffer, value, format).ptr);
  if (text.find_first_of(".in") == std::string::npos) text.insert(std::min(text.find('e'), text.size()), ".0");
  return text;
}

// A YAML double-quoted scalar: always quoted, so "true", "123" or "" stay strings.
std::string quote(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\', out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char escape[8];
      std::snprintf(escape, sizeof escape, "\\x%02x", static_cast<unsigned>(c));
      out += escape;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string format_value(const ConfigField& field) {
  if (auto p = std::get_if<int64_t*>(&field)) return std::to_string(**p);
  if (auto p = std::get_if<double*>(&field)) return format_float(**p);
  if (auto p = std::get_if<bool*>(&field)) return **p ? "true" : "false";
  return quote(*std::get<std::string*>(field));
}

// Parses `text` as the key's type into `config`; `where` ("file:line" or "--set k=v") starts the error.
void assign(const ConfigKey& key, Config& config, const std::string& text, const std::string& where) {
  ConfigField field = key.field(config);
  auto fail = [&](const char* expected) {
    throw UserError(where + ": " + key.name + " must be " + expected + ", got '" + text + "'");
  };
  std::string_view digits = text;
  if (!digits.empty() && digits[0] == '+') digits.remove_prefix(1);
  const char* end = digits.data() + digits.size();
  if (auto p = std::get_if<int64_t*>(&field)) {
    int64_t value = 0;
    auto [ptr, ec] = std::from_chars(digits.data(), end, value);
    if (ec == std::errc::result_out_of_range && ptr == end) fail("an integer that fits in 64 bits");
    if (digits.empty() || ec != std::errc() || ptr != end) fail("an integer");
    **p = value;
  } else if (auto p = std::get_if<double*>(&field)) {
    double value = 0;
    auto [ptr, ec] = std::from_chars(digits.data(), end, value);
    if (digits.empty() || ec != std::errc() || ptr != end || !std::isfinite(value)) fail("a finite number");
    **p = value;
  } else if (auto p = std::get_if<bool*>(&field)) {
    if (text != "true" && text != "false") fail("true or false");
    **p = text == "true";
  } else {
    *std::get<std::string*>(field) = text;
  }
}

// ---- YAML ----

std::string read_file(const std::string& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"), std::fclose);
  auto fail = [&] { throw UserError("cannot read config file '" + path + "': " + std::strerror(errno)); };
  if (!file) fail();
  std::string text;
  char buffer[65536];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, file.get())) > 0) text.append(buffer, n);
  if (std::ferror(file.get())) fail();
  return text;
}

std::string at(const std::string& path, const YAML::Node& node) {
  return path + ":" + std::to_string(node.Mark().line + 1);
}

const char* kind_of(const YAML::Node& node) {
  return node.IsMap() ? "a map" : node.IsSequence() ? "a list" : node.IsNull() ? "nothing" : "a single value";
}

// The value of key `name` from a YAML node; a string key may be empty (`path:`), no key may be a map or list.
std::string scalar_text(const ConfigKey& key, Config& config, const YAML::Node& value, const std::string& where) {
  if (value.IsScalar()) return value.Scalar();
  bool is_string = std::holds_alternative<std::string*>(key.field(config));
  if (value.IsNull() && is_string) return "";
  throw UserError(where + ": " + key.name + " must be " +
                  (is_string ? "a string" : std::string("a single ") + type_name(key.field(config)) + " value") +
                  ", got " + kind_of(value));
}

std::string format_number(double value) { return format_float(value); }
std::string format_number(int64_t value) { return std::to_string(value); }

}  // namespace

std::vector<std::string> config_keys() {
  std::vector<std::string> names;
  for (const ConfigKey& key : config_key_table()) names.push_back(key.name);
  return names;
}

Config config_load(const std::string& path, ConfigSources* sources) {
  return config_parse(read_file(path), path, sources);
}

Config config_parse(const std::string& text, const std::string& origin, ConfigSources* sources) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    std::string line = e.mark.is_null() ? "" : ":" + std::to_string(e.mark.line + 1);
    throw UserError(origin + line + ": malformed YAML: " + e.msg);
  }
  Config config;
  if (root.IsNull()) return config;  // an empty file: all defaults
  if (!root.IsMap())
    throw UserError(at(origin, root) + ": a config file is a map of sections (" + join(section_names()) + "), got " +
                    kind_of(root));
  std::map<std::string, std::string> seen;  // key -> where it was first set, to reject duplicates
  // The keys of a map under `prefix` (a section, or a group such as model.rope_scaling, which recurses).
  std::function<void(const std::string&, const YAML::Node&)> read_keys = [&](const std::string& prefix,
                                                                              const YAML::Node& map) {
    for (const auto& entry : map) {
      std::string where = at(origin, entry.first);
      std::string name = prefix + "." + (entry.first.IsScalar() ? entry.first.Scalar() : "");
      const ConfigKey* key = find_key(name);
      if (!key && is_group(name) && (entry.second.IsMap() || entry.second.IsNull())) {
        if (entry.second.IsMap()) read_keys(name, entry.second);
        continue;
      }
      if (!key) throw UserError(where + ": " + unknown_message(name, false));
      auto [first, inserted] = seen.emplace(name, where);
      if (!inserted) throw UserError(where + ": duplicate key '" + name + "' (first set at " + first->second + ")");
      // Lists, kept as their YAML text: train.stages (trainer/stages.h), data.path (data_paths).
      if ((name == "train.stages" || name == "data.path") && entry.second.IsSequence()) {
        YAML::Emitter flow;
        flow.SetSeqFormat(YAML::Flow);
        flow.SetMapFormat(YAML::Flow);
        flow << entry.second;
        (name == "data.path" ? config.data.path : config.train.stages) = flow.c_str();
        if (sources) (*sources)[name] = where;
        continue;
      }
      assign(*key, config, scalar_text(*key, config, entry.second, where), where);
      if (sources) (*sources)[name] = where;
    }
  };
  for (const auto& section_entry : root) {
    const YAML::Node& section_key = section_entry.first;
    const YAML::Node& section = section_entry.second;
    std::string section_name = section_key.IsScalar() ? section_key.Scalar() : "";
    if (!is_section(section_name)) throw UserError(at(origin, section_key) + ": " + unknown_message(section_name, true));
    if (section.IsNull()) continue;  // `model:` with nothing under it
    if (!section.IsMap())
      throw UserError(at(origin, section) + ": section '" + section_name + "' must be a map of keys such as '" +
                      member_of(config_keys()[0]) + ": ...', got " + kind_of(section));
    read_keys(section_name, section);
  }
  return config;
}

void config_set(Config& config, const std::string& assignment, ConfigSources* sources) {
  const std::string where = "--set " + assignment;
  size_t eq = assignment.find('=');
  if (eq == std::string::npos)
    throw UserError(where + ": expected the form section.key=value, e.g. --set train.lr=3e-4");
  auto trim = [](std::string s) {
    s.erase(0, s.find_first_not_of(" \t"));
    s.erase(s.find_last_not_of(" \t") + 1);
    return s;
  };
  std::string name = trim(assignment.substr(0, eq));
  const ConfigKey* key = find_key(name);
  if (!key) throw UserError(where + ": " + unknown_message(name, false));
  assign(*key, config, trim(assignment.substr(eq + 1)), where);
  if (sources) (*sources)[name] = "--set";
}

void config_validate(const Config& c, const ConfigSources& sources) {
  // Each failure names its key, prefixed with where the key was set when we know it.
  auto fail = [&](const std::string& key, const std::string& why) {
    auto it = sources.find(key);
    throw UserError((it == sources.end() ? "" : it->second + ": ") + why);
  };
  auto require = [&](bool ok, const std::string& key, auto value, const std::string& valid) {
    if (!ok) fail(key, key + " is " + format_number(value) + "; it must be " + valid);
  };
  const ModelConfig& m = c.model;
  const TrainConfig& t = c.train;
  require(m.hidden_size >= 1, "model.hidden_size", m.hidden_size, "at least 1");
  require(m.num_hidden_layers >= 1, "model.num_hidden_layers", m.num_hidden_layers, "at least 1");
  require(m.num_attention_heads >= 1, "model.num_attention_heads", m.num_attention_heads, "at least 1");
  require(m.num_key_value_heads >= 1, "model.num_key_value_heads", m.num_key_value_heads, "at least 1");
  require(m.intermediate_size >= 1, "model.intermediate_size", m.intermediate_size, "at least 1");
  require(m.vocab_size >= 1 && m.vocab_size <= 65536, "model.vocab_size", m.vocab_size, "in [1, 65536]");
  if (m.hidden_size % m.num_attention_heads != 0)
    fail("model.hidden_size", "model.hidden_size " + std::to_string(m.hidden_size) +
                                  " is not divisible by model.num_attention_heads = " +
                                  std::to_string(m.num_attention_heads));
  if (m.num_attention_heads % m.num_key_value_heads != 0)
    fail("model.num_key_value_heads", "model.num_attention_heads " + std::to_string(m.num_attention_heads) +
                                          " is not divisible by model.num_key_value_heads = " +
                                          std::to_string(m.num_key_value_heads) +
                                          " (each key/value head serves a whole number of query heads)");
  if (m.head_dim() % 2 != 0)
    fail("model.hidden_size", "head_dim = model.hidden_size / model.num_attention_heads = " +
                                  std::to_string(m.hidden_size) + " / " + std::to_string(m.num_attention_heads) +
                                  " = " + std::to_string(m.head_dim()) + " must be even (RoPE rotates pairs)");
  require(m.rope_theta > 0, "model.rope_theta", m.rope_theta, "> 0");
  const RopeScalingConfig& rs = m.rope_scaling;
  const std::vector<std::string> rope_types = {"default", "linear", "dynamic", "yarn", "llama3"};
  if (std::find(rope_types.begin(), rope_types.end(), rs.rope_type) == rope_types.end())
    fail("model.rope_scaling.rope_type", "model.rope_scaling.rope_type '" + rs.rope_type + "' is not known; valid: " +
                                             join(rope_types));
  if (rs.rope_type != "default")
    require(rs.factor >= 1, "model.rope_scaling.factor", rs.factor, ">= 1 (how many times the context is extended)");
  if ((rs.rope_type == "dynamic" || rs.rope_type == "yarn" || rs.rope_type == "llama3") &&
      rs.original_max_position_embeddings < 1)
    fail("model.rope_scaling.original_max_position_embeddings",
         "model.rope_scaling.original_max_position_embeddings is required for rope_type '" + rs.rope_type +
             "': the length the model was pretrained at, a positive integer such as 4096");
  if (rs.rope_type == "llama3") {
    require(rs.low_freq_factor > 0, "model.rope_scaling.low_freq_factor", rs.low_freq_factor, "> 0");
    require(rs.high_freq_factor > rs.low_freq_factor, "model.rope_scaling.high_freq_factor", rs.high_freq_factor,
            "greater than model.rope_scaling.low_freq_factor = " + format_float(rs.low_freq_factor));
  }
  if (rs.rope_type == "yarn") {
    require(rs.beta_slow > 0, "model.rope_scaling.beta_slow", rs.beta_slow, "> 0");
    require(rs.beta_fast > rs.beta_slow, "model.rope_scaling.beta_fast", rs.beta_fast,
            "greater than model.rope_scaling.beta_slow = " + format_float(rs.beta_slow));
    require(rs.attention_factor >= 0, "model.rope_scaling.attention_factor", rs.attention_factor,
            ">= 0 (0 = the default 0.1 ln(factor) + 1)");
  }
  require(m.rms_norm_eps > 0, "model.rms_norm_eps", m.rms_norm_eps, "> 0");
  require(m.initializer_range > 0, "model.initializer_range", m.initializer_range, "> 0");
  require(m.embedding_init_std >= 0, "model.embedding_init_std", m.embedding_init_std,
          ">= 0 (0 = model.initializer_range)");

  require(t.seq_len >= 2, "train.seq_len", t.seq_len, "at least 2");
  require(t.batch_size >= 1, "train.batch_size", t.batch_size, "at least 1");
  require(t.micro_batch_size >= 1, "train.micro_batch_size", t.micro_batch_size, "at least 1");
  require(t.steps >= 1, "train.steps", t.steps, "at least 1");
  require(t.lr > 0, "train.lr", t.lr, "> 0");
  require(t.min_lr >= 0 && t.min_lr <= t.lr, "train.min_lr", t.min_lr, "in [0, train.lr = " + format_float(t.lr) + "]");
  require(t.warmup_steps >= 0, "train.warmup_steps", t.warmup_steps, ">= 0");
  require(t.weight_decay >= 0, "train.weight_decay", t.weight_decay, ">= 0");
  require(t.beta1 >= 0 && t.beta1 < 1, "train.beta1", t.beta1, "in [0, 1)");
  require(t.beta2 >= 0 && t.beta2 < 1, "train.beta2", t.beta2, "in [0, 1)");
  require(t.eps > 0, "train.eps", t.eps, "> 0");
  require(t.grad_clip >= 0, "train.grad_clip", t.grad_clip, ">= 0 (0 disables clipping)");
  require(t.threads >= 0, "train.threads", t.threads, ">= 0 (0 = automatic)");
  if (t.device != "cpu" && t.device != "cuda")
    fail("train.device", "train.device '" + t.device + "' is not known; valid: cpu, cuda");
  if (t.recompute != "none" && t.recompute != "full")
    fail("train.recompute", "train.recompute '" + t.recompute + "' is not known; valid: none, full");
  if (t.precision != "fp32" && t.precision != "bf16")
    fail("train.precision", "train.precision '" + t.precision + "' is not known; valid: fp32, bf16");
  if (t.device == "cuda" && m.head_dim() > 128)
    fail("model.hidden_size", "head_dim = model.hidden_size / model.num_attention_heads = " +
                                  std::to_string(m.head_dim()) +
                                  " is above 128, the largest the CUDA flash-attention kernels support");

  const std::vector<std::string> tasks = {"copy", "recall", "passkey", "text", "shards"};
  if (std::find(tasks.begin(), tasks.end(), c.data.task) == tasks.end())
    fail("data.task", "data.task '" + c.data.task + "' is not one of " + join(tasks));
  if ((c.data.task == "text" || c.data.task == "shards") && c.data.path.empty())
    fail(sources.count("data.path") ? "data.path" : "data.task",
         "data.path is required when data.task is '" + c.data.task + "' (" +
             (c.data.task == "text" ? "a text file" : "a token shard file or glob") + ")");
  if (c.data.train_on != "all" && c.data.train_on != "long_range")
    fail("data.train_on", "data.train_on '" + c.data.train_on + "' is not known; valid: all, long_range");
  if (c.data.train_on == "long_range" && (c.data.task == "text" || c.data.task == "shards"))
    fail("data.train_on", "data.train_on=long_range needs a task with long-range labels (copy, recall, passkey), not " +
                              c.data.task + "; valid for it: all");
  if (c.log.dir.empty()) fail("log.dir", "log.dir must not be empty");
  require(c.log.every >= 1, "log.every", c.log.every, "at least 1");
  require(c.log.peak_gflops > 0, "log.peak_gflops", c.log.peak_gflops, "greater than 0");

  const ParallelConfig& p = c.parallel;
  require(p.cp >= 1, "parallel.cp", p.cp, "at least 1");
  require(p.dp >= 1, "parallel.dp", p.dp, "at least 1");
  require(p.ulysses >= 1, "parallel.ulysses", p.ulysses, "at least 1");
  const std::string heads = ulysses_heads_problem(m.num_attention_heads, m.num_key_value_heads, p.ulysses);
  if (!heads.empty()) fail("parallel.ulysses", heads);
  require(p.check_every >= 0, "parallel.check_every", p.check_every, "0 or more");
  require(p.comm_timeout_s > 0, "parallel.comm_timeout_s", p.comm_timeout_s, "> 0 seconds");
  require(c.checkpoint.every >= 0, "checkpoint.every", c.checkpoint.every, "0 (only at the end) or more");
  require(c.checkpoint.keep >= 0, "checkpoint.keep", c.checkpoint.keep, "0 (keep all) or more");
  if (p.sharding != "zigzag" && p.sharding != "contiguous")
    fail("parallel.sharding", "parallel.sharding '" + p.sharding + "' is not known; valid: zigzag, contiguous");
  if (t.batch_size % (t.micro_batch_size * p.dp) != 0)
    fail("train.batch_size", "train.batch_size " + std::to_string(t.batch_size) +
                                 " is not divisible by train.micro_batch_size * parallel.dp = " +
                                 std::to_string(t.micro_batch_size) + " * " + std::to_string(p.dp) + " = " +
                                 std::to_string(t.micro_batch_size * p.dp));
}

std::string config_to_yaml(const Config& config) {
  Config copy = config;  // the table's accessors take a mutable Config
  std::string out, section, group;
  for (const ConfigKey& key : config_key_table()) {
    if (section_of(key.name) != section) out += (section = section_of(key.name)) + ":\n", group.clear();
    std::string member = member_of(key.name);
    const size_t dot = member.find('.');
    if (dot == std::string::npos) {
      out += "  " + member + ": " + format_value(key.field(copy)) + "\n";
      group.clear();
      continue;
    }
    if (member.substr(0, dot) != group) out += "  " + (group = member.substr(0, dot)) + ":\n";
    out += "    " + member.substr(dot + 1) + ": " + format_value(key.field(copy)) + "\n";
  }
  return out;
}

std::vector<std::string> data_paths(const DataConfig& data) {
  if (data.path.empty()) return {};
  if (data.path.front() != '[') return {data.path};
  YAML::Node list;
  try {
    list = YAML::Load(data.path);
  } catch (const YAML::Exception& e) {
    throw UserError("data.path list '" + data.path + "' does not parse (" + e.msg +
                    "); give a file, a directory, a glob, or a YAML list of them");
  }
  std::vector<std::string> paths;
  for (const YAML::Node& entry : list) {
    if (!entry.IsScalar() || entry.Scalar().empty())
      throw UserError("data.path list '" + data.path + "' holds " + kind_of(entry) +
                      "; every entry must be a file, directory or glob");
    paths.push_back(entry.Scalar());
  }
  if (paths.empty()) throw UserError("data.path is an empty list; give at least one file, directory or glob");
  return paths;
}

std::string config_get(const Config& config, const std::string& name) {
  const ConfigKey* key = find_key(name);
  if (!key) throw UserError(unknown_message(name, false));
  Config copy = config;
  const ConfigField field = key->field(copy);
  if (auto p = std::get_if<std::string*>(&field)) return **p;
  return format_value(field);
}

std::string config_help() {
  Config defaults;
  size_t name_width = 0, default_width = 0;
  for (const ConfigKey& key : config_key_table()) {
    name_width = std::max(name_width, std::strlen(key.name));
    default_width = std::max(default_width, format_value(key.field(defaults)).size());
  }
  auto pad = [](std::string s, size_t width) { return s + std::string(width - s.size() + 2, ' '); };
  std::string out = "Config keys: set them in the YAML file under their section, or with --set section.key=value.\n";
  for (const ConfigKey& key : config_key_table())
    out += "  " + pad(key.name, name_width) + pad(type_name(key.field(defaults)), 7) +
           pad(format_value(key.field(defaults)), default_width) + key.help + "\n";
  return out;
}

}  // namespace rt
