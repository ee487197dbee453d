// `ringtrain sample`: the shared set-up with a KV cache as the attention, the checkpoint's weights, prefill and decode.
#include "trainer/sample.h"

#include <algorithm>
#include <random>

#include "attention/kv_cache_attention.h"
#include "parallel/ring_kv_cache.h"
#include "core/check.h"
#include "core/timer.h"
#include "trainer/run_setup.h"
#include "trainer/train_checkpoint.h"

namespace rt {

std::vector<int32_t> sample_run(const Config& config, const SampleOptions& options, std::FILE* out) {
  const int64_t V = config.model.vocab_size, T = static_cast<int64_t>(options.prompt.size());
  RT_USER_CHECK(T > 0, "the prompt is empty; give --prompt TEXT, a non-empty --prompt-file or --prompt-ids");
  for (size_t i = 0; i < options.prompt.size(); ++i)
    RT_USER_CHECK(options.prompt[i] >= 0 && options.prompt[i] < V,
                  "prompt token " + std::to_string(i) + " is " + std::to_string(options.prompt[i]) +
                      ", outside the model's vocabulary 0.." + std::to_string(V - 1));
  RT_USER_CHECK(options.max_new_tokens >= 0, "--max-new-tokens must be >= 0");
  const int64_t context = options.context > 0 ? options.context : config.train.seq_len;
  RT_USER_CHECK(
      T + options.max_new_tokens <= context,
      "the prompt has " + std::to_string(T) + " tokens and --max-new-tokens " + std::to_string(options.max_new_tokens) +
          " asks for " + std::to_string(T + options.max_new_tokens) + ", more than the context of " +
          std::to_string(context) +
          " tokens (train.seq_len, or --context); shorten the prompt, lower --max-new-tokens or raise --context");
  RT_USER_CHECK(config.parallel.dp == 1, "ringtrain sample decodes one sequence, over parallel.cp ranks; set "
                                         "parallel.dp=1 (got " + std::to_string(config.parallel.dp) + ")");
  RT_USER_CHECK(config.parallel.ulysses == 1, "ringtrain sample shards the prompt over a ring of parallel.cp ranks, "
                                              "not over Ulysses groups; set parallel.ulysses=1 (got " +
                                                  std::to_string(config.parallel.ulysses) +
                                                  ") and parallel.cp to the ranks");
  const ModelConfig& mc = config.model;
  const int64_t kv_heads = mc.num_key_value_heads, head_dim = mc.hidden_size / mc.num_attention_heads;
  KvCacheAttention* cache = nullptr;      // one rank
  RingKvCacheAttention* ring = nullptr;   // cp ranks: the prompt's shards, prefilled through the ring
  RunSetup setup = run_setup_make(config, [&](Backend& backend, Mesh& mesh) -> std::unique_ptr<SequenceAttention> {
    if (mesh.cp > 1) {
      auto attention = std::make_unique<RingKvCacheAttention>(
          *mesh.cp_group, backend, mc.num_hidden_layers, T, options.max_new_tokens, kv_heads, head_dim,
          sharding_parse(config.parallel.sharding),
          config.train.precision == "bf16" ? Precision::bf16 : Precision::fp32);
      ring = attention.get();
      return attention;
    }
    auto attention =
        std::make_unique<KvCacheAttention>(backend, mc.num_hidden_layers, T + options.max_new_tokens, kv_heads, head_dim);
    cache = attention.get();
    return attention;
  });
  Backend& backend = *setup.backend;
  LlamaModel& model = *setup.model;
  Communicator& world = *setup.mesh.world;
  const bool root = world.rank() == 0;
  if (!root) out = nullptr;
  model.set_recompute(true);  // forward only: one layer's activations at a time
  model_weights_load(options.checkpoint, config, model, backend, world);

  std::mt19937_64 rng(options.seed);
  Tensor logits = backend.alloc({1, V});
  std::vector<float> host(static_cast<size_t>(V));
  std::vector<double> shared(static_cast<size_t>(V));
  std::vector<int32_t> generated;
  // The forward of `tokens` at `pos` with the logits of local row `row`; then the next token from them. On cp ranks
  // the row that holds the last token (owner) gives the logits, rank 0 draws, and every rank learns the token.
  auto forward_draw = [&](const std::vector<int32_t>& tokens, const std::vector<int32_t>& pos, int64_t row,
                          bool owner) {
    const int64_t n = static_cast<int64_t>(tokens.size());
    Batch b{1,       n, backend.alloc({n}, DType::i32), backend.alloc({n}, DType::i32), backend.alloc({n}, DType::i32),
            Tensor{}};
    backend.upload(tokens.data(), b.tokens);
    backend.upload(pos.data(), b.pos);
    model.forward_logits(b, logits, row);
    backend.download(logits, host.data());
    if (!ring) return sample_next(host.data(), V, options.sampling, rng);
    for (int64_t i = 0; i < V; ++i) shared[i] = owner ? host[i] : 0.0;
    world.all_reduce_sum(shared.data(), static_cast<int>(V));  // the owner's logits, exactly, on every rank
    double token = 0;
    if (root) {
      for (int64_t i = 0; i < V; ++i) host[i] = static_cast<float>(shared[i]);
      token = sample_next(host.data(), V, options.sampling, rng);
    }
    world.all_reduce_sum(&token, 1);  // rank 0's draw
    return static_cast<int32_t>(token);
  };
  auto length = [&] { return ring ? ring->length() : cache->length(); };
  auto step = [&](const std::vector<int32_t>& tokens) {  // tokens at positions length() ... (one rank: any count)
    std::vector<int32_t> pos(tokens.size());
    for (size_t i = 0; i < pos.size(); ++i) pos[i] = static_cast<int32_t>(length() + static_cast<int64_t>(i));
    return forward_draw(tokens, pos, -1, true);
  };
  auto prefill = [&] {
    if (!ring) return step(options.prompt);
    // This rank's rows of the padded prompt (padding: token 0, after the prompt, so no real token sees it).
    std::vector<int32_t> tokens, pos;
    int64_t last = -1;  // the local row of the prompt's last token, when this rank holds it
    for (const Chunk& c : ring->prompt_chunks())
      for (int64_t p = c.start; p < c.start + c.length; ++p) {
        if (p == T - 1) last = static_cast<int64_t>(tokens.size());
        tokens.push_back(p < T ? options.prompt[static_cast<size_t>(p)] : 0);
        pos.push_back(static_cast<int32_t>(p));
      }
    return forward_draw(tokens, pos, std::max<int64_t>(last, 0), last >= 0);
  };
  Timer prefill_timer;
  int32_t next = options.max_new_tokens > 0 ? prefill() : 0;
  const double prefill_s = prefill_timer.seconds();
  Timer decode;
  for (int64_t t = 0; t < options.max_new_tokens; ++t) {
    generated.push_back(next);
    if (out && options.ids)
      std::fprintf(out, t ? " %d" : "%d", next);
    else if (out && next < 256)
      std::fputc(next, out);
    else if (out)
      std::fprintf(out, "<%d>", next);
    if (out) std::fflush(out);
    if (next == config.data.eot || t + 1 == options.max_new_tokens) break;
    next = step({next});
  }
  if (!out) return generated;
  if (options.ids || !generated.empty()) std::fputc('\n', out);
  std::fflush(out);
  // The speeds, on stderr (stdout is the text): the prefill includes the first token's draw; each later token is
  // one decode step against the cache.
  const double decode_s = decode.seconds();
  const int64_t decoded = std::max<int64_t>(0, static_cast<int64_t>(generated.size()) - 1);
  std::fprintf(stderr, "sample | prefill %ld tokens in %.3f s (%.0f tok/s) | decode %ld tokens in %.3f s (%.1f tok/s) "
                       "at context %ld..%ld, %d rank(s)\n",
               T, prefill_s, static_cast<double>(T) / prefill_s, decoded, decode_s,
               decode_s > 0 ? static_cast<double>(decoded) / decode_s : 0.0, T + 1, T + decoded, world.size());
  return generated;
}

}  // namespace rt
