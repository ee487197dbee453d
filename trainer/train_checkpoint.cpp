// Checkpointing in the training loop: host copies of the state for rank 0's writer, resume with checks, signals.
#include "trainer/train_checkpoint.h"

#include <signal.h>
#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <filesystem>
#include <functional>
#include <optional>

#include "core/check.h"
#include "core/timer.h"
#include "trainer/hf_config.h"
#include "trainer/parameter_check.h"
#include "trainer/stop_signal.h"

namespace rt {
namespace {

namespace fs = std::filesystem;

// Keys that fix the shapes of the parameters: a checkpoint must agree with the config on all of them.
constexpr const char* kShapeKeys[] = {"model.hidden_size",         "model.num_hidden_layers", "model.num_attention_heads",
                                      "model.num_key_value_heads", "model.intermediate_size", "model.vocab_size",
                                      "model.tie_word_embeddings"};

// A key's value as the resolved-config YAML writes it, or "(absent)".
// A key's value in a resolved config: "train.seq_len", or a key of a group such as "model.rope_scaling.factor".
std::string yaml_value(const YAML::Node& node, const std::string& key) {
  if (!node || !node.IsMap()) return "(absent)";
  const size_t dot = key.find('.');
  const YAML::Node child = node[key.substr(0, dot)];
  if (dot == std::string::npos) return child && child.IsScalar() ? child.Scalar() : "(absent)";
  return yaml_value(child, key.substr(dot + 1));
}

struct ConfigChange {
  std::string key, before, after;
};

// Keys whose values differ between the checkpoint's resolved config and the run's.
std::vector<ConfigChange> config_changes(const std::string& checkpoint_yaml, const Config& config) {
  YAML::Node before, after = YAML::Load(config_to_yaml(config));
  try {
    before = YAML::Load(checkpoint_yaml);
  } catch (const YAML::Exception&) {
    before = YAML::Node();
  }
  std::vector<ConfigChange> out;
  for (const std::string& key : config_keys()) {
    std::string a = yaml_value(before, key), b = yaml_value(after, key);
    if (a != b) out.push_back({key, a, b});
  }
  return out;
}

bool is_shape_key(const std::string& key) {
  for (const char* k : kShapeKeys)
    if (key == k) return true;
  return false;
}

// Refuses a checkpoint whose tensors are not exactly the model's parameters (and their AdamW moments).
// Every parameter's tensor (with_optimizer: and its AdamW moments) is in the checkpoint with the parameter's shape.
void check_tensors(const Checkpoint& c, const Parameters& params, bool with_optimizer) {
  std::string missing, shapes;
  for (const ParameterInfo& info : params.infos()) {
    for (const auto& entry : {std::pair{std::string(kModelFile), info.name},
                              std::pair{std::string(kOptimizerFile), info.name + ".exp_avg"},
                              std::pair{std::string(kOptimizerFile), info.name + ".exp_avg_sq"}}) {
      const std::string& file = entry.first;
      const std::string& name = entry.second;
      if (!with_optimizer && file == kOptimizerFile) continue;
      auto tensors = c.tensors(file);
      auto it = std::find_if(tensors.begin(), tensors.end(), [&](const auto& t) { return t.first == name; });
      if (it == tensors.end() || !c.f32(file, name))
        missing += (missing.empty() ? "" : ", ") + name;
      else if (it->second != info.shape)
        shapes += (shapes.empty() ? "" : ", ") + name;
    }
  }
  if (!missing.empty() || !shapes.empty())
    throw UserError("checkpoint " + c.dir() + " does not hold this model's tensors" +
                    (missing.empty() ? "" : "; missing: " + missing) + (shapes.empty() ? "" : "; other shape: " + shapes));
}

std::string mesh_text(int world, int cp, int dp, int ulysses) {
  return std::to_string(world) + (world == 1 ? " rank" : " ranks") + " (dp " + std::to_string(dp) + " x cp " +
         std::to_string(cp) + (ulysses > 1 ? " x ulysses " + std::to_string(ulysses) : std::string()) + ")";
}

}  // namespace

std::string checkpoint_root(const Config& config) {
  return config.checkpoint.dir.empty() ? (fs::path(config.log.dir) / "checkpoints").string() : config.checkpoint.dir;
}

TrainCheckpoints::TrainCheckpoints(const Config& config, Mesh& mesh, Backend& backend, LlamaModel& model,
                                   AdamW& optimizer, bool print)
    : config_(config),
      mesh_(mesh),
      backend_(backend),
      model_(model),
      optimizer_(optimizer),
      print_(print),
      root_(checkpoint_root(config)) {}

void TrainCheckpoints::note(const std::string& line) const {
  if (!print_ || mesh_.world->rank() != 0) return;
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

namespace {

// The checkpoint `request` names, read and verified: itself when it is one, else from the directory (request, or
// `root` when ""), the newest that verifies (those that do not are noted and skipped). nullopt only when "" finds
// no checkpoint at all. `option` names the request in messages ("--resume", "--checkpoint").
std::optional<Checkpoint> checkpoint_pick(const std::string& request, const std::string& root_dir,
                                          const std::string& option,
                                          const std::function<void(const std::string&)>& note) {
  std::vector<std::string> candidates;
  const bool named_one = !request.empty() && checkpoint_is_one(request);
  const std::string root = request.empty() ? root_dir : request;
  if (named_one) {
    candidates = {request};
  } else {
    std::error_code ec;
    if (!request.empty() && !fs::is_directory(request, ec))
      throw UserError(option + " " + request + ": no such checkpoint or directory of checkpoints");
    candidates = checkpoint_candidates(root);
    if (candidates.empty()) {
      if (!request.empty())
        throw UserError(option + " " + request + ": not a checkpoint (no manifest.pb) and no step_* checkpoints in it");
      return std::nullopt;
    }
  }
  std::optional<Checkpoint> c;
  std::string first_problem;
  for (const std::string& dir : candidates) {
    try {
      c = checkpoint_read(dir);
      break;
    } catch (const UserError& e) {
      if (named_one) throw;
      if (first_problem.empty()) first_problem = e.what();
      note("ringtrain: skipping checkpoint " + dir + ": " + e.what());
    }
  }
  if (!c)
    throw UserError("no checkpoint in " + root + " verifies (" + std::to_string(candidates.size()) +
                    " tried); the newest: " + first_problem);
  return c;
}

// Refuses a checkpoint whose model has another shape than the config's (the keys listed); returns the other changed
// keys as "key: checkpoint X, config Y; ...".
std::string shape_checked(const Checkpoint& c, const Config& config, const std::string& use) {
  std::string refused, changed;
  for (const ConfigChange& d : config_changes(c.info().config_yaml, config)) {
    std::string& list = is_shape_key(d.key) ? refused : changed;
    list += (list.empty() ? "" : "; ") + d.key + ": checkpoint " + d.before + ", config " + d.after;
  }
  if (!refused.empty())
    throw UserError("checkpoint " + c.dir() + " holds a model of another shape than the config: " + refused +
                    "; set these keys to the checkpoint's values to " + use + " it");
  return changed;
}

}  // namespace

std::string model_weights_load(const std::string& request, const Config& config, LlamaModel& model, Backend& backend,
                               Communicator& world) {
  const bool print = world.rank() == 0;
  std::optional<Checkpoint> c =
      checkpoint_pick(request, checkpoint_root(config), "--checkpoint", [&](const std::string& line) {
        if (print) std::fprintf(stderr, "%s\n", line.c_str());
      });
  if (!c) throw UserError("--checkpoint: no checkpoint in " + checkpoint_root(config));
  shape_checked(*c, config, "use");
  Parameters& params = model.params();
  check_tensors(*c, params, false);
  for (size_t i = 0; i < params.infos().size(); ++i) {
    Tensor value = params.value(i);
    backend.upload(c->f32(kModelFile, params.infos()[i].name), value);
  }
  parameters_check_agree(world, params, c->info().step);  // every rank read the same checkpoint
  return c->dir();
}

int64_t TrainCheckpoints::load(const std::string& request) {
  std::optional<Checkpoint> c = checkpoint_pick(request, root_, "--resume", [&](const std::string& line) { note(line); });
  if (!c) {
    note("no checkpoint in " + root_ + "; starting from step 0");
    return 0;
  }
  const CheckpointInfo& info = c->info();
  const std::string changed = shape_checked(*c, config_, "resume from");
  Parameters& params = model_.params();
  check_tensors(*c, params, true);

  for (size_t i = 0; i < params.infos().size(); ++i) {
    const ParameterInfo& p = params.infos()[i];
    Tensor value = params.value(i);
    Tensor m = optimizer_.first_moment().slice(p.offset, p.shape), v = optimizer_.second_moment().slice(p.offset, p.shape);
    backend_.upload(c->f32(kModelFile, p.name), value);
    backend_.upload(c->f32(kOptimizerFile, p.name + ".exp_avg"), m);
    backend_.upload(c->f32(kOptimizerFile, p.name + ".exp_avg_sq"), v);
  }
  optimizer_.set_steps_done(info.optimizer_step);
  start_tokens_ = info.tokens_seen;

  note("resuming from " + c->dir() + ": step " + std::to_string(info.step) + ", " + std::to_string(info.tokens_seen) +
       " tokens seen, saved by " + mesh_text(info.world_size, info.cp, info.dp, info.ulysses) +
       ", now " + mesh_text(mesh_.world->size(), mesh_.cp, mesh_.dp, mesh_.ulysses));
  const std::string trained_at = yaml_value(YAML::Load(info.config_yaml), "train.seq_len");
  if (trained_at != std::to_string(config_.train.seq_len) && trained_at != "(absent)")
    note("resuming at seq_len " + std::to_string(config_.train.seq_len) + "; checkpoint trained at " + trained_at);
  if (!changed.empty()) note("changed since the checkpoint: " + changed);
  if (info.step >= config_.train.steps)
    note("the checkpoint has done all train.steps = " + std::to_string(config_.train.steps) +
         "; nothing to train (raise train.steps to continue)");
  int64_t cursor = 0;  // where this run's next step reads
  const bool past_int64 = __builtin_mul_overflow(info.step, config_.train.batch_size, &cursor);
  if (past_int64 || info.next_sequence != cursor)
    note("note: train.batch_size differs from the checkpoint's " + std::to_string(info.sequences_per_step) +
         ": step " + std::to_string(info.step + 1) + " reads global sequences from " +
         (past_int64 ? std::string("past 2^63") : std::to_string(cursor)) + ", not from the checkpoint's data cursor " +
         std::to_string(info.next_sequence));
  return info.step;
}

int64_t TrainCheckpoints::resume(const std::string& request) {
  const int64_t step = load(request);
  // Every rank must have loaded the same checkpoint (a file system some rank does not see would differ).
  double steps[2] = {static_cast<double>(step), static_cast<double>(step) * static_cast<double>(step)};
  mesh_.world->all_reduce_sum(steps, 2);
  const double n = mesh_.world->size();
  if (steps[0] != n * static_cast<double>(step) || steps[1] != n * static_cast<double>(step) * static_cast<double>(step))
    throw UserError("the ranks found different checkpoints to resume from (this one: step " + std::to_string(step) +
                    "); put checkpoint.dir on a file system every rank sees");
  parameters_check_agree(*mesh_.world, model_.params(), step);
  start_step_ = step;
  return step;
}

CheckpointSaved TrainCheckpoints::save(int64_t step) {
  Timer timer;
  CheckpointSaved saved;
  if (mesh_.world->rank() == 0) {
    Parameters& params = model_.params();
    // The flat buffers as host memory: the tensors themselves on the CPU, copies downloaded from a GPU.
    std::vector<float> copies[3];
    auto host = [&](const Tensor& t, std::vector<float>& copy) -> const float* {
      if (t.device() == Device::cpu) return t.f32();
      copy.resize(static_cast<size_t>(t.numel()));
      backend_.download(t, copy.data());
      return copy.data();
    };
    const float* values = host(params.values(), copies[0]);
    const float* m = host(optimizer_.first_moment(), copies[1]);
    const float* v = host(optimizer_.second_moment(), copies[2]);

    const TrainConfig& tc = config_.train;
    CheckpointContents c;
    CheckpointInfo& info = c.info;
    info.step = step;
    info.tokens_seen = start_tokens_ + (step - start_step_) * tc.batch_size * tc.seq_len;
    info.optimizer_step = optimizer_.steps_done();
    info.data_task = config_.data.task;
    info.next_sequence = step * tc.batch_size;
    info.sequences_per_step = tc.batch_size;
    // All randomness is counter-based splitmix64: the data stream is keyed by global sequence index, and
    // initialisation (done once, before step 1) by parameter name.
    info.rng = {{"data", "splitmix64", static_cast<uint64_t>(tc.seed), static_cast<uint64_t>(info.next_sequence)},
                {"init", "splitmix64", static_cast<uint64_t>(tc.seed), 0}};
    info.world_size = mesh_.world->size();
    info.cp = mesh_.cp;
    info.dp = mesh_.dp;
    info.ulysses = mesh_.ulysses;
    info.sharding = config_.parallel.sharding;
    info.config_yaml = config_to_yaml(config_);
    c.hf_config_json = hf_config_json(config_);
    for (const ParameterInfo& p : params.infos()) {
      c.model.push_back({p.name, p.shape, values + p.offset});
      c.optimizer.push_back({p.name + ".exp_avg", p.shape, m + p.offset});
      c.optimizer.push_back({p.name + ".exp_avg_sq", p.shape, v + p.offset});
    }
    saved = checkpoint_write(root_, c, config_.checkpoint.keep);
  }
  mesh_.world->barrier();
  saved.seconds = timer.seconds();
  return saved;
}

StepCheckpoint TrainCheckpoints::after_step(int64_t step, bool last) {
  StepCheckpoint out;
  const int received = StopSignals::received();
  double flags[2] = {received != 0 ? 1.0 : 0.0, received == SIGINT ? 1.0 : 0.0};
  mesh_.world->all_reduce_sum(flags, 2);
  out.stop = flags[0] > 0 && !last;
  out.signal = flags[1] == flags[0] ? "SIGINT" : "SIGTERM";
  const int64_t every = config_.checkpoint.every;
  if (last || out.stop || (every > 0 && step % every == 0)) {
    out.saved = save(step);
    out.written = true;
  }
  return out;
}

void TrainCheckpoints::report(const StepCheckpoint& s, int64_t step) const {
  if (s.written) {
    char line[1024];
    std::snprintf(line, sizeof line, "checkpoint step %lld -> %s (%.1f MiB, %.0f ms)", static_cast<long long>(step),
                  s.saved.dir.c_str(), static_cast<double>(s.saved.bytes) / (1 << 20), 1e3 * s.saved.seconds);
    note(line);
  }
  if (s.stop)
    note("ringtrain: " + s.signal + " received: every rank finished step " + std::to_string(step) +
         ", its checkpoint is saved; exiting (resume with --resume)");
}

}  // namespace rt
