// configs/tiny.yaml as a Config, for the tests that train it in-process (the copy task learns in a few hundred steps).
#pragma once
#include <string>

#include "trainer/config.h"

namespace rt {

inline Config tiny_copy_config(int64_t steps, const std::string& log_dir) {
  Config c;
  c.model.hidden_size = 128;
  c.model.num_hidden_layers = 2;
  c.model.num_attention_heads = 4;
  c.model.num_key_value_heads = 4;
  c.model.intermediate_size = 256;
  c.train.seq_len = 64;
  c.train.batch_size = 8;
  c.train.steps = steps;
  c.train.lr = 3e-3;
  c.train.min_lr = 3e-4;
  c.train.warmup_steps = 10;
  c.data.task = "copy";
  c.log.dir = log_dir;
  return c;
}

}  // namespace rt
