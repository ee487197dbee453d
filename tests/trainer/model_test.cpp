// The whole model: gradients against finite differences, overfitting one batch, learning the copy task.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "attention/sequence_attention.h"
#include "trainer/model.h"
#include "trainer/optimizer.h"
#include "trainer/train_loop.h"

namespace rt {
namespace {

struct HostBatch {
  int64_t batch, seq;
  std::vector<int32_t> tokens, labels, pos;
};

HostBatch random_batch(std::mt19937& rng, int64_t batch, int64_t seq, int64_t vocab) {
  HostBatch h{batch, seq, {}, {}, {}};
  std::uniform_int_distribution<int32_t> tok(0, static_cast<int32_t>(vocab - 1));
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t < seq; ++t) {
      h.tokens.push_back(tok(rng));
      h.labels.push_back(t % 5 == 3 ? -1 : tok(rng));  // some ignored labels
      h.pos.push_back(static_cast<int32_t>(t));
    }
  return h;
}

Batch to_device(Backend& be, const HostBatch& h) {
  const int64_t n = h.batch * h.seq;
  Batch b{h.batch, h.seq, be.alloc({n}, DType::i32), be.alloc({n}, DType::i32), be.alloc({n}, DType::i32)};
  be.upload(h.tokens.data(), b.tokens);
  be.upload(h.labels.data(), b.labels);
  be.upload(h.pos.data(), b.pos);
  return b;
}

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
  Config c;
  c.model.hidden_size = 64;
  c.model.num_hidden_layers = 2;
  c.model.num_attention_heads = 2;
  c.model.num_key_value_heads = 2;
  c.model.intermediate_size = 128;
  c.train.seq_len = 64;
  c.train.batch_size = 8;
  c.train.steps = 150;
  c.train.lr = 1e-2;
  c.train.min_lr = 1e-3;
  c.train.warmup_steps = 10;
  c.data.task = "copy";
  c.log.dir = testing::TempDir() + "ringtrain_copy_test";
  TrainResult r = train_run(c, {.print = false});
  ASSERT_TRUE(r.long_losses.front().has_value());
  double first = *r.long_losses.front(), last = 0;
  for (size_t i = r.long_losses.size() - 10; i < r.long_losses.size(); ++i) last += *r.long_losses[i] / 10;
  EXPECT_GT(first, 3.5);
  EXPECT_LT(last, 0.5 * first) << "long-range loss went from " << first << " to " << last;
}

}  // namespace
}  // namespace rt
