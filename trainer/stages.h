// Length stages (train.stages): the list of stages a job runs in order, and the config each one trains with.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "trainer/config.h"

namespace rt {

// One stage: how many steps, and the keys it sets ("train.seq_len=4096", "model.rope_theta=500000", ...).
struct Stage {
  int64_t steps = 0;
  std::vector<std::string> sets;
};

// train.stages, a YAML list of maps with the keys steps (required), seq_len, batch_size, rope_theta, rope_scaling (a
// map of model.rope_scaling keys) and cp; empty when there are none. Throws rt::UserError naming the stage and key.
std::vector<Stage> stages_parse(const Config& config);

// The config stage k trains with: the job's config, then the keys of stages 0..k (a stage keeps what the previous
// ones set), parallel.dp = ranks / cp for the job's ranks (cp * dp), train.steps = all stages' total (so warm-up
// and the cosine run once over the whole job), and no stages. Its last step is stage_end(stages, k).
Config stage_config(const Config& config, const std::vector<Stage>& stages, size_t k);
int64_t stage_end(const std::vector<Stage>& stages, size_t k);

}  // namespace rt
