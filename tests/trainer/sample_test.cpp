// Sampling: the next-token rules (greedy, temperature, top-k, top-p) and decoding with a KV cache, which must give the
// logits of recomputing the whole prefix at every step.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "attention/kv_cache_attention.h"
#include "attention/sequence_attention.h"
#include "trainer/model.h"
#include "trainer/sampler.h"

namespace rt {
namespace {

TEST(SampleNext, GreedyTopKAndTopP) {
  const std::vector<float> logits = {0.5f, 2.0f, -1.0f, 2.0f, 1.0f};
  std::mt19937_64 rng(1);
  EXPECT_EQ(sample_next(logits.data(), 5, {0.0, 0, 1.0}, rng), 1) << "greedy: the first of equal maxima";
  EXPECT_EQ(sample_next(logits.data(), 5, {1.0, 1, 1.0}, rng), 1) << "top_k = 1 is greedy";
  // Temperature 1: frequencies follow softmax(logits) (20000 draws: within 4 standard deviations).
  std::vector<double> p(5), count(5, 0);
  double z = 0;
  for (size_t i = 0; i < 5; ++i) z += p[i] = std::exp(logits[i]);
  const int draws = 20000;
  for (int n = 0; n < draws; ++n) ++count[static_cast<size_t>(sample_next(logits.data(), 5, {1.0, 0, 1.0}, rng))];
  for (size_t i = 0; i < 5; ++i) {
    const double want = p[i] / z, sd = std::sqrt(want * (1 - want) / draws);
    EXPECT_NEAR(count[i] / draws, want, 4 * sd) << "token " << i;
  }
  // top_k = 2 keeps the two 2.0 logits (ids 1, 3) at equal odds; top_p = 0.5 keeps them too (each holds ~0.35).
  std::vector<int> hits(5, 0);
  for (int n = 0; n < 4000; ++n) ++hits[static_cast<size_t>(sample_next(logits.data(), 5, {1.0, 2, 1.0}, rng))];
  EXPECT_EQ(hits[0] + hits[2] + hits[4], 0);
  EXPECT_NEAR(hits[1] / 4000.0, 0.5, 0.04);
  std::fill(hits.begin(), hits.end(), 0);
  for (int n = 0; n < 4000; ++n) ++hits[static_cast<size_t>(sample_next(logits.data(), 5, {1.0, 0, 0.5}, rng))];
  EXPECT_EQ(hits[0] + hits[2] + hits[4], 0);
  EXPECT_GT(hits[1], 0);
  EXPECT_GT(hits[3], 0);
  // The same seed draws the same tokens.
  std::mt19937_64 a(7), b(7);
  for (int n = 0; n < 50; ++n)
    EXPECT_EQ(sample_next(logits.data(), 5, {0.8, 0, 0.9}, a), sample_next(logits.data(), 5, {0.8, 0, 0.9}, b));
}

// Greedy decoding of 40 tokens after a 37-token prompt (GQA, 3 layers; the decode kernel splits the cache over key
// blocks once it passes 256 tokens, so a 300-token prompt covers that too): at every step the logits from the cache
// equal those of the whole prefix recomputed by the local attention, to fp32 precision, and so do the tokens.
TEST(KvCache, CachedDecodingEqualsFullRecomputation) {
  Backend& be = cpu_backend();
  ModelConfig c;
  c.hidden_size = 48, c.num_hidden_layers = 3, c.num_attention_heads = 6, c.num_key_value_heads = 2;
  c.intermediate_size = 64, c.vocab_size = 97, c.initializer_range = 0.3;
  for (const int64_t prompt_length : {37, 300}) {
    SCOPED_TRACE("prompt " + std::to_string(prompt_length));
    const int64_t steps = 40, capacity = prompt_length + steps;
    KvCacheAttention cache(be, c.num_hidden_layers, capacity, c.num_key_value_heads,
                           c.hidden_size / c.num_attention_heads);
    auto local = local_attention_make(be);
    LlamaModel cached(c, be, cache), full(c, be, *local);
    cached.init_weights(5), full.init_weights(5);
    std::mt19937_64 rng(11);
    std::vector<int32_t> tokens(static_cast<size_t>(prompt_length));
    for (int32_t& t : tokens) t = static_cast<int32_t>(rng() % c.vocab_size);
    Tensor logits_cached = be.alloc({1, c.vocab_size}), logits_full = be.alloc({1, c.vocab_size});
    auto batch_of = [&](const std::vector<int32_t>& t, int64_t first_pos) {
      const int64_t n = static_cast<int64_t>(t.size());
      std::vector<int32_t> pos(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) pos[static_cast<size_t>(i)] = static_cast<int32_t>(first_pos + i);
      Batch b{1, n, be.alloc({n}, DType::i32), be.alloc({n}, DType::i32), be.alloc({n}, DType::i32), Tensor{}};
      be.upload(t.data(), b.tokens);
      be.upload(pos.data(), b.pos);
      return b;
    };
    std::vector<int32_t> fresh = tokens;  // what the cache has not seen yet
    for (int64_t s = 0; s < steps; ++s) {
      cached.forward_logits(batch_of(fresh, cache.length()), logits_cached);
      full.forward_logits(batch_of(tokens, 0), logits_full);
      std::vector<float> a(static_cast<size_t>(c.vocab_size)), b(a.size());
      be.download(logits_cached, a.data());
      be.download(logits_full, b.data());
      double diff = 0, scale = 0;
      for (size_t i = 0; i < a.size(); ++i)
        diff = std::max(diff, double(std::abs(a[i] - b[i]))), scale = std::max(scale, double(std::abs(b[i])));
      ASSERT_LE(diff, 2e-5 * scale + 1e-6) << "step " << s;
      const int32_t next = static_cast<int32_t>(std::max_element(a.begin(), a.end()) - a.begin());
      ASSERT_EQ(next, std::max_element(b.begin(), b.end()) - b.begin()) << "step " << s;
      tokens.push_back(next);
      fresh = {next};
    }
    EXPECT_EQ(cache.length(), capacity - 1);
  }
}

}  // namespace
}  // namespace rt
