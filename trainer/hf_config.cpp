// Hugging Face LlamaConfig JSON from ringtrain's model config (the keys transformers 4.x and 5.x read).
#include "trainer/hf_config.h"

#include <nlohmann/json.hpp>

namespace rt {

std::string hf_config_json(const Config& config) {
  const ModelConfig& m = config.model;
  nlohmann::ordered_json j;
  j["architectures"] = {"LlamaForCausalLM"};
  j["model_type"] = "llama";
  j["hidden_size"] = m.hidden_size;
  j["intermediate_size"] = m.intermediate_size;
  j["num_hidden_layers"] = m.num_hidden_layers;
  j["num_attention_heads"] = m.num_attention_heads;
  j["num_key_value_heads"] = m.num_key_value_heads;
  j["head_dim"] = m.head_dim();
  j["vocab_size"] = m.vocab_size;
  j["hidden_act"] = "silu";
  j["rms_norm_eps"] = m.rms_norm_eps;
  j["rope_theta"] = m.rope_theta;  // transformers 4.x; 5.x reads rope_parameters
  // model.rope_scaling with HF's keys: rope_parameters (5.x) and rope_scaling (4.x) carry the same values.
  const RopeScalingConfig& s = m.rope_scaling;
  nlohmann::ordered_json scaling;
  if (s.rope_type != "default") {
    scaling["rope_type"] = s.rope_type;
    scaling["factor"] = s.factor;
  }
  if (s.rope_type == "yarn" || s.rope_type == "llama3")
    scaling["original_max_position_embeddings"] = s.original_max_position_embeddings;
  if (s.rope_type == "llama3") {
    scaling["low_freq_factor"] = s.low_freq_factor;
    scaling["high_freq_factor"] = s.high_freq_factor;
  }
  if (s.rope_type == "yarn") {
    scaling["beta_fast"] = s.beta_fast;
    scaling["beta_slow"] = s.beta_slow;
    if (s.attention_factor > 0) scaling["attention_factor"] = s.attention_factor;
    scaling["truncate"] = s.truncate;
  }
  nlohmann::ordered_json parameters = {{"rope_type", s.rope_type}, {"rope_theta", m.rope_theta}};
  for (const auto& [key, value] : scaling.items()) parameters[key] = value;
  j["rope_parameters"] = parameters;
  j["rope_scaling"] = scaling.empty() ? nlohmann::ordered_json() : scaling;
  // HF's dynamic type takes max_position_embeddings as the pretraining length and scales beyond it; for the others it
  // is the length this model trains at.
  j["max_position_embeddings"] =
      s.rope_type == "dynamic" ? s.original_max_position_embeddings : config.train.seq_len;
  j["tie_word_embeddings"] = m.tie_word_embeddings;
  j["attention_bias"] = false;
  j["attention_dropout"] = 0.0;
  j["mlp_bias"] = false;
  j["initializer_range"] = m.initializer_range;
  j["pretraining_tp"] = 1;
  j["use_cache"] = true;
  j["bos_token_id"] = nullptr;  // the byte tokenizer has no special tokens
  j["eos_token_id"] = nullptr;
  j["torch_dtype"] = "float32";
  j["dtype"] = "float32";
  return j.dump(2) + "\n";
}

}  // namespace rt
