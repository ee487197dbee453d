// `ringtrain sample`: the shared set-up with a KV cache as the attention, the checkpoint's weights, prefill and decode.
#include "trainer/sample.h"

#include <mpi.h>

#include <algorithm>
#include <random>

#include "attention/kv_cache_attention.h"
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
  int world = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  RT_USER_CHECK(world == 1, "ringtrain sample runs on one rank (got " + std::to_string(world) +
                                "); launch it without mpirun or with -np 1");
  const ModelConfig& mc = config.model;
  KvCacheAttention* cache = nullptr;
  RunSetup setup = run_setup_make(config, [&](Backend& backend) {
    auto attention =
        std::make_unique<KvCacheAttention>(backend, mc.num_hidden_layers, T + options.max_new_tokens,
                                           mc.num_key_value_heads, mc.hidden_size / mc.num_attention_heads);
    cache = attention.get();
    return attention;
  });
  Backend& backend = *setup.backend;
  LlamaModel& model = *setup.model;
  model.set_recompute(true);  // forward only: one layer's activations at a time
  model_weights_load(options.checkpoint, config, model, backend, *setup.mesh.world);

  std::mt19937_64 rng(options.seed);
  Tensor logits = backend.alloc({1, V});
  std::vector<float> host(static_cast<size_t>(V));
  std::vector<int32_t> generated;
  // Feed `tokens` at positions cache->length() ..., then draw the next token from the last one's logits.
  auto step = [&](const std::vector<int32_t>& tokens) {
    const int64_t n = static_cast<int64_t>(tokens.size());
    std::vector<int32_t> pos(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) pos[static_cast<size_t>(i)] = static_cast<int32_t>(cache->length() + i);
    Batch b{1,       n, backend.alloc({n}, DType::i32), backend.alloc({n}, DType::i32), backend.alloc({n}, DType::i32),
            Tensor{}};
    backend.upload(tokens.data(), b.tokens);
    backend.upload(pos.data(), b.pos);
    model.forward_last_logits(b, logits);
    backend.download(logits, host.data());
    return sample_next(host.data(), V, options.sampling, rng);
  };
  Timer prefill;
  int32_t next = options.max_new_tokens > 0 ? step(options.prompt) : 0;
  const double prefill_s = prefill.seconds();
  Timer decode;
  for (int64_t t = 0; t < options.max_new_tokens; ++t) {
    generated.push_back(next);
    if (options.ids)
      std::fprintf(out, t ? " %d" : "%d", next);
    else if (next < 256)
      std::fputc(next, out);
    else
      std::fprintf(out, "<%d>", next);
    std::fflush(out);
    if (next == config.data.eot || t + 1 == options.max_new_tokens) break;
    next = step({next});
  }
  if (options.ids || !generated.empty()) std::fputc('\n', out);
  std::fflush(out);
  // The speeds, on stderr (stdout is the text): the prefill includes the first token's draw; each later token is
  // one decode step against the cache.
  const double decode_s = decode.seconds();
  const int64_t decoded = std::max<int64_t>(0, static_cast<int64_t>(generated.size()) - 1);
  std::fprintf(stderr, "sample | prefill %ld tokens in %.3f s (%.0f tok/s) | decode %ld tokens in %.3f s (%.1f tok/s) "
                       "at context %ld..%ld\n",
               T, prefill_s, static_cast<double>(T) / prefill_s, decoded, decode_s,
               decode_s > 0 ? static_cast<double>(decoded) / decode_s : 0.0, T + 1, T + decoded);
  return generated;
}

}  // namespace rt
