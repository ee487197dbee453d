// Length stages: train.stages parsed from its YAML list, and each stage's config (trainer/stages.h).
#include "trainer/stages.h"

#include <yaml-cpp/yaml.h>

#include "core/check.h"

namespace rt {
namespace {

// The stage keys and the config key each sets.
struct StageKey {
  const char* name;
  const char* key;
};
constexpr StageKey kStageKeys[] = {{"seq_len", "train.seq_len"},
                                   {"batch_size", "train.batch_size"},
                                   {"rope_theta", "model.rope_theta"},
                                   {"cp", "parallel.cp"}};
constexpr const char* kValid = "steps, seq_len, batch_size, rope_theta, rope_scaling, cp";

}  // namespace

std::vector<Stage> stages_parse(const Config& config) {
  const std::string& text = config.train.stages;
  std::vector<Stage> stages;
  if (text.empty()) return stages;
  YAML::Node list;
  try {
    list = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw UserError("train.stages does not parse as a YAML list: " + e.msg);
  }
  if (!list.IsSequence() || list.size() == 0)
    throw UserError(
        "train.stages must be a list of stages such as [{steps: 100, seq_len: 4096}, {steps: 50, "
        "seq_len: 16384, rope_theta: 500000.0, cp: 2}]");
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string where = "train.stages: stage " + std::to_string(i + 1);
    const YAML::Node node = list[i];
    if (!node.IsMap()) throw UserError(where + " must be a map of " + kValid);
    Stage stage;
    for (const auto& entry : node) {
      const std::string name = entry.first.Scalar();
      if (name == "steps") {
        try {
          stage.steps = entry.second.as<int64_t>();
        } catch (const YAML::Exception&) {
          throw UserError(where + ": steps must be an integer, got '" + YAML::Dump(entry.second) + "'");
        }
        if (stage.steps < 1) throw UserError(where + ": steps is " + std::to_string(stage.steps) + "; it must be >= 1");
        continue;
      }
      if (name == "rope_scaling") {
        if (!entry.second.IsMap()) throw UserError(where + ": rope_scaling must be a map of model.rope_scaling keys");
        for (const auto& r : entry.second)
          stage.sets.push_back("model.rope_scaling." + r.first.Scalar() + "=" + r.second.Scalar());
        continue;
      }
      const StageKey* key = nullptr;
      for (const StageKey& k : kStageKeys)
        if (name == k.name) key = &k;
      if (!key || !entry.second.IsScalar())
        throw UserError(where + ": " + (key ? "'" + name + "' must be a single value" : "unknown key '" + name + "'") +
                        "; valid: " + kValid);
      stage.sets.push_back(std::string(key->key) + "=" + entry.second.Scalar());
    }
    if (stage.steps == 0) throw UserError(where + " has no steps (how many optimizer steps it runs)");
    stages.push_back(stage);
  }
  return stages;
}

int64_t stage_end(const std::vector<Stage>& stages, size_t k) {
  int64_t end = 0;
  for (size_t i = 0; i <= k && i < stages.size(); ++i) end += stages[i].steps;
  return end;
}

Config stage_config(const Config& config, const std::vector<Stage>& stages, size_t k) {
  Config c = config;
  c.train.stages.clear();
  const int64_t ranks = config.parallel.cp * config.parallel.dp * config.parallel.ulysses;
  for (size_t i = 0; i <= k; ++i)
    for (const std::string& set : stages[i].sets) {
      try {
        config_set(c, set);
      } catch (const UserError& e) {
        throw UserError("train.stages: stage " + std::to_string(i + 1) + ": " + e.what());
      }
    }
  const int64_t sequence_ranks = c.parallel.cp * c.parallel.ulysses;
  if (c.parallel.cp < 1 || ranks % sequence_ranks != 0)
    throw UserError("train.stages: stage " + std::to_string(k + 1) + ": cp " + std::to_string(c.parallel.cp) +
                    (c.parallel.ulysses > 1 ? " * ulysses " + std::to_string(c.parallel.ulysses) : std::string()) +
                    " does not divide the job's " + std::to_string(ranks) +
                    " ranks (parallel.cp * parallel.dp * parallel.ulysses); a stage keeps the ranks and the Ulysses "
                    "groups and sets dp = ranks / (cp * ulysses)");
  c.parallel.dp = ranks / sequence_ranks;
  c.train.steps = stage_end(stages, stages.size() - 1);
  return c;
}

}  // namespace rt
