// `ringtrain sample`: autoregressive generation from a checkpoint with a KV cache, streamed as it is drawn.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "trainer/config.h"
#include "trainer/sampler.h"

namespace rt {

struct SampleOptions {
  std::string checkpoint;       // a checkpoint, or a directory of them (its newest that verifies)
  std::vector<int32_t> prompt;  // token ids (bytes for byte-level models)
  int64_t max_new_tokens = 200;
  int64_t context = 0;  // the most tokens prompt + generation may hold; 0 = train.seq_len
  SamplingOptions sampling;
  uint64_t seed = 0;
  bool ids = false;  // print token ids (space separated) instead of the bytes they stand for
};

// Prefills the prompt through the model's forward (into the cache), then decodes one token at a time against it,
// writing each token to `out` as it comes (rank 0; the others write nothing); stops after max_new_tokens or at
// data.eot. Returns the new tokens. On parallel.cp ranks (dp 1) the prompt is sharded as in training and prefilled
// through the ring; each rank keeps its shard of the KV cache and every decode step merges the ranks' attention by
// LSE (parallel/ring_kv_cache.h); rank 0 draws each token for all. Throws rt::UserError for a checkpoint that does
// not verify, an empty prompt, a token outside the vocabulary, a prompt and generation longer than the context, or
// dp > 1.
std::vector<int32_t> sample_run(const Config& config, const SampleOptions& options, std::FILE* out);

}  // namespace rt
