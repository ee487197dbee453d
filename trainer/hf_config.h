// config.json for a checkpoint: the model as a Hugging Face LlamaConfig, so transformers can load the weights.
#pragma once
#include <string>

#include "trainer/config.h"

namespace rt {

// A LlamaConfig JSON (architectures LlamaForCausalLM, model_type llama, fp32) describing config.model;
// max_position_embeddings is train.seq_len, the longest sequence trained on.
std::string hf_config_json(const Config& config);

}  // namespace rt
