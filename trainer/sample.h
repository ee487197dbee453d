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
// writing each token to `out` as it comes; stops after max_new_tokens or at data.eot. Returns the new tokens.
// One rank. Throws rt::UserError for a checkpoint that does not verify, an empty prompt, a token outside the
// vocabulary, or a prompt and generation longer than the context.
std::vector<int32_t> sample_run(const Config& config, const SampleOptions& options, std::FILE* out);

}  // namespace rt
