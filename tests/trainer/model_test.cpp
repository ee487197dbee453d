// The whole model: gradients against finite differences, overfitting one batch, learning the copy task.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "attention/sequence_attention.h"
#include "tests/trainer/host_batch.h"
#include "tests/trainer/tiny_config.h"
#include "trainer/model.h"
#include "trainer/optimizer.h"
#include "trainer/train_loop.h"

namespace rt {
namespace {

double loss_sum(Backend& be, LlamaModel& model, const Batch& b) {
  Tensor losses = be.alloc({b.batch * b.seq});
  model.forward(b, losses);
  return be.sum(losses);
}

ModelConfig tiny_model(bool tied, int64_t kv_heads) {
  ModelConfig c;
  c.hidden_size = 16;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = kv_heads;
  c.intermediate_size = 24;
  c.vocab_size = 37;
  c.tie_word_embeddings = tied;
  c.initializer_range = 0.2;  // large enough that every path carries gradient
  return c;
}

// Directional derivative of the summed loss along a random direction in each parameter tensor, analytic
// (gradient . v) against central differences (fp32 forward, summed in double).
void check_gradients(const ModelConfig& config) {
  Backend& be = cpu_backend();
  auto attention = local_attention_make(be);
  LlamaModel model(config, be, *attention);
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  model.init_weights(seed);
  std::mt19937 rng(static_cast<uint32_t>(seed));
  Batch batch = to_device(be, random_batch(rng, 2, 11, config.vocab_size));
  Tensor losses = be.alloc({batch.batch * batch.seq});
  model.forward_backward(batch, 1.f, losses);

  Parameters& p = model.params();
  std::normal_distribution<float> normal;
  for (size_t i = 0; i < p.infos().size(); ++i) {
    SCOPED_TRACE(p.infos()[i].name);
    Tensor value = p.value(i), grad = p.grad(i);
    std::vector<float> v(static_cast<size_t>(value.numel())), w(v.size()), g(v.size());
    be.download(value, w.data());
    be.download(grad, g.data());
    double norm = 0, analytic = 0;
    for (float& x : v) x = normal(rng), norm += double(x) * x;
    for (size_t j = 0; j < v.size(); ++j) v[j] = static_cast<float>(v[j] / std::sqrt(norm)), analytic += double(g[j]) * v[j];
    const double h = 1e-2;
    auto loss_at = [&](double step) {
      std::vector<float> shifted(w);
      for (size_t j = 0; j < w.size(); ++j) shifted[j] = static_cast<float>(w[j] + step * v[j]);
      be.upload(shifted.data(), value);
      return loss_sum(be, model, batch);
    };
    const double numeric = (loss_at(h) - loss_at(-h)) / (2 * h);
    be.upload(w.data(), value);
    // Central differences: truncation O(h^2) plus fp32 rounding of the loss / h; 2% of the slope, with a
    // floor for directions the loss barely depends on.
    EXPECT_NEAR(analytic, numeric, 2e-2 * std::abs(numeric) + 2e-3) << "analytic " << analytic << " numeric " << numeric;
  }
}

TEST(ModelGradients, TiedEmbeddingsMultiHead) { check_gradients(tiny_model(true, 4)); }
TEST(ModelGradients, UntiedHeadGroupedQuery) { check_gradients(tiny_model(false, 2)); }
TEST(ModelGradients, MultiQuery) { check_gradients(tiny_model(true, 1)); }

// Gradient accumulation: four micro-batches of one sequence give the gradient of one batch of four.
// train.recompute = full: the layers' forwards run again inside the backward from each layer's saved input, so the
// gradients are the same bits as without (3 layers: the last keeps its forward, the others are recomputed), with
// fewer bytes kept per token. A batch longer than the loss's chunk (4096 tokens) runs the chunked loss in both modes.
// Each matrix is drawn with its standard deviation: initializer_range, the output projections that over sqrt(2 layers),
// and the token embedding model.embedding_init_std when set (torchtitan's 1.0), else initializer_range.
TEST(ModelInit, EachMatrixHasItsStandardDeviation) {
  for (const double embedding_std : {0.0, 1.0}) {
    ModelConfig c = tiny_model(true, 4);
    c.hidden_size = 64, c.intermediate_size = 128, c.vocab_size = 256, c.initializer_range = 0.05;
    c.embedding_init_std = embedding_std;
    Backend& be = cpu_backend();
    auto attention = local_attention_make(be);
    LlamaModel model(c, be, *attention);
    model.init_weights(5);
    Parameters& p = model.params();
    for (size_t i = 0; i < p.infos().size(); ++i) {
      const std::string& name = p.infos()[i].name;
      if (p.infos()[i].shape.size() != 2) continue;
      std::vector<float> w(static_cast<size_t>(p.value(i).numel()));
      be.download(p.value(i), w.data());
      double sum = 0;
      for (float x : w) sum += static_cast<double>(x) * x;
      const double std = std::sqrt(sum / static_cast<double>(w.size()));
      const double want = name.ends_with("embed_tokens.weight")               ? (embedding_std > 0 ? 1.0 : 0.05)
                          : name.ends_with("o_proj.weight") || name.ends_with("down_proj.weight") ? 0.05 / 2
                                                                                                  : 0.05;
      EXPECT_NEAR(std, want, 0.1 * want) << name << " with embedding_init_std " << embedding_std;
    }
  }
}

TEST(ModelRecompute, GradientsAreBitIdenticalWithLessMemory) {
  Backend& be = cpu_backend();
  ModelConfig config = tiny_model(false, 2);
  config.num_hidden_layers = 3;
  for (int64_t seq : {11, 2100}) {  // 2 x 2100 tokens: two loss chunks
    SCOPED_TRACE("seq " + std::to_string(seq));
    std::mt19937 rng(7);
    Batch batch = to_device(be, random_batch(rng, 2, seq, config.vocab_size));
    std::vector<std::vector<float>> grads;
    std::vector<int64_t> bytes;
    for (bool full : {false, true}) {
      auto attention = local_attention_make(be);
      LlamaModel model(config, be, *attention);
      model.set_recompute(full);
      model.init_weights(11);
      Tensor losses = be.alloc({batch.batch * batch.seq});
      be.fill(model.params().grads(), 0.f);
      model.forward_backward(batch, 1.f / static_cast<float>(batch.batch * batch.seq), losses);
      grads.emplace_back(static_cast<size_t>(model.params().grads().numel()));
      be.download(model.params().grads(), grads.back().data());
      bytes.push_back(model.activation_bytes_per_token(batch.batch, batch.seq));
    }
    ASSERT_EQ(grads[0].size(), grads[1].size());
    EXPECT_EQ(std::memcmp(grads[0].data(), grads[1].data(), grads[0].size() * sizeof(float)), 0);
    double norm = 0;
    for (float g : grads[0]) norm += static_cast<double>(g) * g;
    EXPECT_GT(norm, 0);
    EXPECT_LT(bytes[1], bytes[0]) << "recompute keeps less";
  }
}

// Also with sequences of 2100 tokens, where the whole batch's loss runs in chunks of 4096 tokens (cutting through a
// sequence) and each micro-batch's in one: the chunked loss computes the same gradient.
TEST(ModelTraining, MicroBatchesAccumulateToTheFullBatchGradient) {
  Backend& be = cpu_backend();
  ModelConfig mc = tiny_model(false, 2);
  auto attention = local_attention_make(be);
  LlamaModel model(mc, be, *attention);
  model.init_weights(3);
  std::mt19937 rng(std::random_device{}());
  for (int64_t S : {13, 2100}) {
    SCOPED_TRACE("seq " + std::to_string(S));
    HostBatch full = random_batch(rng, 4, S, mc.vocab_size);
    Tensor losses = be.alloc({4 * S});
    be.fill(model.params().grads(), 0.f);
    model.forward_backward(to_device(be, full), 0.1f, losses);
    std::vector<float> whole(static_cast<size_t>(model.params().count())), accumulated(whole.size());
    be.download(model.params().grads(), whole.data());
    be.fill(model.params().grads(), 0.f);
    Tensor micro_losses = be.alloc({S});
    for (int b = 0; b < 4; ++b) {
      HostBatch part{1, S, {}, {}, {}};
      part.tokens.assign(full.tokens.begin() + b * S, full.tokens.begin() + (b + 1) * S);
      part.labels.assign(full.labels.begin() + b * S, full.labels.begin() + (b + 1) * S);
      part.pos.assign(full.pos.begin() + b * S, full.pos.begin() + (b + 1) * S);
      model.forward_backward(to_device(be, part), 0.1f, micro_losses);
    }
    be.download(model.params().grads(), accumulated.data());
    double max_diff = 0, max_abs = 0;
    for (size_t i = 0; i < whole.size(); ++i) {
      max_diff = std::max(max_diff, static_cast<double>(std::abs(whole[i] - accumulated[i])));
      max_abs = std::max(max_abs, static_cast<double>(std::abs(whole[i])));
    }
    // Only the summation order over sequences differs: a few fp32 roundings of the largest gradient.
    EXPECT_LE(max_diff, 64 * 1.2e-7 * max_abs) << "max |diff| " << max_diff << " of max |g| " << max_abs;
  }
}

// Same seed, same config: the same losses bit for bit.
TEST(ModelTraining, RunsAreReproducible) {
  Config c;
  c.model.hidden_size = 32;
  c.model.num_hidden_layers = 1;
  c.model.num_attention_heads = 2;
  c.model.num_key_value_heads = 1;
  c.model.intermediate_size = 64;
  c.train.seq_len = 32;
  c.train.batch_size = 4;
  c.train.micro_batch_size = 2;
  c.train.steps = 5;
  c.data.task = "recall";
  c.log.dir = testing::TempDir() + "ringtrain_repro_test";
  TrainResult a = train_run(c, {.print = false}), b = train_run(c, {.print = false});
  EXPECT_EQ(a.losses, b.losses);
  c.train.seed += 1;
  TrainResult other = train_run(c, {.print = false});
  EXPECT_NE(a.losses, other.losses);
}

TEST(ModelTraining, OverfitsOneBatch) {
  Backend& be = cpu_backend();
  ModelConfig mc;
  mc.hidden_size = 64;
  mc.num_hidden_layers = 2;
  mc.num_attention_heads = 4;
  mc.num_key_value_heads = 2;
  mc.intermediate_size = 128;
  TrainConfig tc;
  tc.lr = 3e-3;
  tc.weight_decay = 0;
  auto attention = local_attention_make(be);
  LlamaModel model(mc, be, *attention);
  model.init_weights(7);
  AdamW opt(be, model.params(), tc);
  std::mt19937 rng(std::random_device{}());
  HostBatch h = random_batch(rng, 2, 32, mc.vocab_size);
  Batch batch = to_device(be, h);
  int64_t count = 0;
  for (int32_t l : h.labels) count += l >= 0;
  Tensor losses = be.alloc({64});
  double loss = 0;
  int steps = 0;
  for (; steps < 300; ++steps) {
    be.fill(model.params().grads(), 0.f);
    model.forward_backward(batch, 1.f / static_cast<float>(count), losses);
    loss = be.sum(losses) / static_cast<double>(count);
    if (loss < 0.05) break;
    opt.step(static_cast<float>(tc.lr), 1.f);
  }
  EXPECT_LT(loss, 0.05) << "after " << steps << " steps";
}

// A short run on the copy task: the second copy of the span is predictable only by attending back half a
// sequence, so its loss falls well below the untrained value (log of the alphabet, ~4.2) only if attention works.
TEST(ModelTraining, CopyTaskLongRangeLossFalls) {
  const Config c = tiny_copy_config(300, testing::TempDir() + "ringtrain_copy_test");
  TrainResult r = train_run(c, {.print = false});
  ASSERT_TRUE(r.long_losses.front().has_value());
  double first = *r.long_losses.front(), last = 0;
  for (size_t i = r.long_losses.size() - 10; i < r.long_losses.size(); ++i) last += *r.long_losses[i] / 10;
  EXPECT_GT(first, 3.5);
  // Seeds 1234 and 7-10 all reach < 0.02 by step 300.
  EXPECT_LT(last, 0.25 * first) << "long-range loss went from " << first << " to " << last;
}

}  // namespace
}  // namespace rt
