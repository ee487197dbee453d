// The table of config keys: name, meaning and member of each; everything else about keys derives from it.
#include "trainer/config.h"

namespace rt {

// The key's name is the member's path, so the two cannot drift apart; the type comes from the member.
#define RT_KEY(section, key, help) \
  ConfigKey { #section "." #key, help, [](Config& c) -> ConfigField { return &c.section.key; } }

const std::vector<ConfigKey>& config_key_table() {
  static const std::vector<ConfigKey> table = {
      RT_KEY(model, hidden_size, "width of the residual stream"),
      RT_KEY(model, num_hidden_layers, "number of decoder blocks"),
      RT_KEY(model, num_attention_heads, "query heads; head_dim = hidden_size / num_attention_heads"),
      RT_KEY(model, num_key_value_heads, "key/value heads (grouped-query attention when fewer than query heads)"),
      RT_KEY(model, intermediate_size, "hidden width of the SwiGLU MLP"),
      RT_KEY(model, vocab_size, "number of token ids (byte tasks need at least 256)"),
      RT_KEY(model, rope_theta, "RoPE base frequency"),
      RT_KEY(model, rope_scaling.rope_type, "RoPE scaling (HF rope_type): default | linear | dynamic | yarn | llama3"),
      RT_KEY(model, rope_scaling.factor, "context extension factor (linear, dynamic, yarn, llama3); >= 1"),
      RT_KEY(model, rope_scaling.original_max_position_embeddings, "the pretraining length (dynamic, yarn, llama3)"),
      RT_KEY(model, rope_scaling.low_freq_factor, "llama3: wavelengths above original/low_freq_factor are scaled"),
      RT_KEY(model, rope_scaling.high_freq_factor, "llama3: wavelengths below original/high_freq_factor are kept"),
      RT_KEY(model, rope_scaling.beta_fast, "yarn: rotations over the original length above which dims extrapolate"),
      RT_KEY(model, rope_scaling.beta_slow, "yarn: rotations below which dims interpolate (divide by factor)"),
      RT_KEY(model, rope_scaling.attention_factor, "yarn: cos/sin scale; 0 = HF's default 0.1 ln(factor) + 1"),
      RT_KEY(model, rope_scaling.truncate, "yarn: round the correction range outwards to whole dimensions"),
      RT_KEY(model, rms_norm_eps, "epsilon inside RMSNorm"),
      RT_KEY(model, tie_word_embeddings, "share the input embedding with the output projection"),
      RT_KEY(model, initializer_range, "standard deviation of the normal weight initialisation"),
      RT_KEY(model, embedding_init_std, "standard deviation of the token embedding's; 0 = initializer_range"),
      RT_KEY(train, seq_len, "tokens per sequence (the whole sequence, before context-parallel sharding)"),
      RT_KEY(train, batch_size, "sequences per optimizer step, over all data-parallel ranks"),
      RT_KEY(train, micro_batch_size, "sequences per forward/backward on one rank; the rest is accumulation"),
      RT_KEY(train, steps, "optimizer steps to run"),
      RT_KEY(train, lr, "peak learning rate, reached after warmup"),
      RT_KEY(train, min_lr, "learning rate the cosine schedule decays to"),
      RT_KEY(train, warmup_steps, "steps of linear warmup from 0 to lr"),
      RT_KEY(train, weight_decay, "AdamW decoupled weight decay"),
      RT_KEY(train, beta1, "AdamW first-moment decay"),
      RT_KEY(train, beta2, "AdamW second-moment decay"),
      RT_KEY(train, eps, "AdamW denominator epsilon"),
      RT_KEY(train, grad_clip, "max global gradient norm; 0 disables clipping"),
      RT_KEY(train, seed, "seed for weight initialisation and data"),
      RT_KEY(train, threads, "OpenMP threads per rank; 0 = the node's cores divided among its ranks"),
      RT_KEY(train, device, "cpu | cuda (each rank on one GPU of its node, by node-local rank; docs/gpu.md)"),
      RT_KEY(train, stages, "length stages run in order: a list of {steps, seq_len, batch_size, rope_theta, rope_scaling, cp}; their total replaces train.steps"),
      RT_KEY(train, recompute, "none | full: layers keep only their input and recompute their forward in the backward"),
      RT_KEY(train, eval_every, "evaluate train.batch_size held-out sequences (seed train.seed + 1) every N steps, logged and in TensorBoard; 0 = never"),
      RT_KEY(train, precision, "fp32 | bf16: GEMM and attention product inputs in bf16, fp32 sums, fp32 weights"),
      RT_KEY(data, task, "copy | recall | passkey | text | shards"),
      RT_KEY(data, path, "a file, directory (every file below) or glob, or a list of them: text files (task text, each file a document) or token shards (task shards)"),
      RT_KEY(data, eot, "the token that begins each document (llm.c's <|endoftext|>; task text puts it before each file); -1 = none"),
      RT_KEY(data, document_mask, "attention stays inside each document of a packed sequence (needs document boundaries)"),
      RT_KEY(data, reset_positions, "RoPE positions restart at 0 at each document start (needs document boundaries)"),
      RT_KEY(data, train_on, "all | long_range: the labels trained on; long_range keeps only the task's answers (copy, recall, passkey), as Zoology's MQAR"),
      RT_KEY(log, dir, "run directory: resolved config, metrics.jsonl, checkpoints"),
      RT_KEY(log, every, "print and record metrics every N steps"),
      RT_KEY(log, peak_gflops, "fp32 peak GFLOP/s of all the cores the job uses (the % peak column); 441 = 2 Zen 5 cores"),
      RT_KEY(log, tensorboard, "also write the metrics as TensorBoard event files in log.dir (tensorboard --logdir)"),
      RT_KEY(parallel, cp, "context-parallel ranks per sequence (ring attention)"),
      RT_KEY(parallel, dp, "data-parallel replicas; cp * dp * ulysses must equal the number of ranks"),
      RT_KEY(parallel, ulysses, "Ulysses ranks per ring position: an all-to-all over heads inside each group of ulysses neighbouring ranks (keep it inside a node); must divide the query heads"),
      RT_KEY(parallel, sharding, "how a sequence is cut across the cp ranks: zigzag (balanced causal work) | contiguous"),
      RT_KEY(parallel, check_every, "check that every rank holds the same parameters every N steps (0 = only at start)"),
      RT_KEY(parallel, comm_timeout_s, "seconds a collective or ring exchange may wait (MPI and NCCL) before the job ends, naming the peer"),
      RT_KEY(checkpoint, dir, "where checkpoints go; \"\" = <log.dir>/checkpoints (on a file system every rank sees)"),
      RT_KEY(checkpoint, every, "save a checkpoint every N steps; 0 = only at the end (and on SIGTERM / SIGINT)"),
      RT_KEY(checkpoint, keep, "newest checkpoints to keep; older ones are deleted after a new one is complete (0 = all)"),
  };
  return table;
}

#undef RT_KEY

}  // namespace rt
