// The whole model with bf16 GEMMs (train.precision = bf16) against fp32: losses and every parameter's gradient within
// the error of a naive bf16 model that rounds where ours rounds (GEMM inputs to bf16, nearest even) and multiplies in
// fp32; and a run that learns the copy task like the fp32 one.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "attention/sequence_attention.h"
#include "core/bf16.h"
#include "tests/trainer/host_batch.h"
#include "tests/trainer/tiny_config.h"
#include "trainer/model.h"
#include "trainer/train_loop.h"

namespace rt {
namespace {

// The CPU backend, but gemm_bf16 is the naive version: the inputs rounded to bf16 on the host, then the fp32 GEMM.
class NaiveBf16Backend final : public Backend {
 public:
  Device device() const override { return Device::cpu; }
  std::string name() const override { return "naive-bf16"; }
  Tensor alloc(std::vector<int64_t> shape, DType dtype) override { return be_.alloc(std::move(shape), dtype); }
  void fill(Tensor& t, float v) override { be_.fill(t, v); }
  void copy(const Tensor& s, Tensor& d) override { be_.copy(s, d); }
  void upload(const void* h, Tensor& d) override { be_.upload(h, d); }
  void download(const Tensor& s, void* h) override { be_.download(s, h); }
  void gemm(const Tensor& a, bool ta, const Tensor& b, bool tb, Tensor& c, float al, float be) override {
    be_.gemm(a, ta, b, tb, c, al, be);
  }
  void gemm_bf16(const Tensor& a, bool ta, const Tensor& b, bool tb, Tensor& c, float al, float be) override {
    be_.gemm(rounded(a), ta, rounded(b), tb, c, al, be);
  }
  void to_bf16(const Tensor& s, Tensor& d) override { be_.to_bf16(s, d); }
  void from_bf16(const Tensor& s, Tensor& d) override { be_.from_bf16(s, d); }
  void add(const Tensor& a, const Tensor& b, Tensor& o) override { be_.add(a, b, o); }
  void axpy(float a, const Tensor& x, Tensor& y) override { be_.axpy(a, x, y); }
  void scale(Tensor& x, float s) override { be_.scale(x, s); }
  void copy_columns(const Tensor& s, int64_t sc, Tensor& d, int64_t dc, int64_t r, int64_t w, bool a) override {
    be_.copy_columns(s, sc, d, dc, r, w, a);
  }
  void rmsnorm_forward(const Tensor& x, const Tensor& w, float e, Tensor& y, Tensor& r) override {
    be_.rmsnorm_forward(x, w, e, y, r);
  }
  void rmsnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& r, Tensor& dx,
                        Tensor& dw) override {
    be_.rmsnorm_backward(dy, x, w, r, dx, dw);
  }
  void rope_forward(Tensor& x, const Tensor& p, const RopeParams& r) override { be_.rope_forward(x, p, r); }
  void rope_backward(Tensor& x, const Tensor& p, const RopeParams& r) override { be_.rope_backward(x, p, r); }
  void swiglu_forward(const Tensor& g, const Tensor& u, Tensor& o) override { be_.swiglu_forward(g, u, o); }
  void swiglu_backward(const Tensor& d, const Tensor& g, const Tensor& u, Tensor& dg, Tensor& du) override {
    be_.swiglu_backward(d, g, u, dg, du);
  }
  void embedding_forward(const Tensor& t, const Tensor& w, Tensor& o) override { be_.embedding_forward(t, w, o); }
  void embedding_backward(const Tensor& t, const Tensor& d, Tensor& dw) override { be_.embedding_backward(t, d, dw); }
  void cross_entropy_forward(const Tensor& l, const Tensor& y, Tensor& loss, Tensor& lse, Tensor* hits) override {
    be_.cross_entropy_forward(l, y, loss, lse, hits);
  }
  void cross_entropy_backward(const Tensor& l, const Tensor& y, const Tensor& lse, float s, Tensor& d) override {
    be_.cross_entropy_backward(l, y, lse, s, d);
  }
  double sum(const Tensor& x) override { return be_.sum(x); }
  double sum_squares(const Tensor& x) override { return be_.sum_squares(x); }
  void adamw_update(Tensor& p, const Tensor& g, Tensor& m, Tensor& v, const AdamWStep& s) override {
    be_.adamw_update(p, g, m, v, s);
  }

 private:
  Tensor rounded(const Tensor& x) {
    Tensor r = be_.alloc(x.shape());
    for (int64_t i = 0; i < x.numel(); ++i) r.f32()[i] = bf16_round(x.f32()[i]);
    return r;
  }
  Backend& be_ = cpu_backend();
};

struct StepResult {
  double loss = 0;
  std::vector<std::vector<float>> grads;  // per parameter tensor
};

StepResult forward_backward(Backend& be, const ModelConfig& config, Precision precision, uint64_t seed,
                            const HostBatch& h) {
  auto attention = local_attention_make(be, AttentionKernel::flash, precision);
  LlamaModel model(config, be, *attention, precision);
  model.init_weights(seed);
  Batch batch = to_device(be, h);
  Tensor losses = be.alloc({batch.batch * batch.seq});
  be.fill(model.params().grads(), 0.f);
  model.forward_backward(batch, 1.f, losses);
  StepResult r{be.sum(losses), {}};
  for (size_t i = 0; i < model.params().infos().size(); ++i) {
    Tensor g = model.params().grad(i);
    r.grads.emplace_back(static_cast<size_t>(g.numel()));
    be.download(g, r.grads.back().data());
  }
  return r;
}

double rel_l2(const std::vector<float>& x, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < x.size(); ++i)
    num += (double(x[i]) - ref[i]) * (double(x[i]) - ref[i]), den += double(ref[i]) * ref[i];
  return std::sqrt(num / std::max(den, 1e-300));
}

// bf16 against fp32: the kernel model (oneDNN bf16 matmuls, or this CPU's fallback) within twice the naive bf16
// model's error, for the loss and each gradient; and the errors are bf16's (well above fp32's), so the test would see
// GEMMs that ignore the precision.
TEST(ModelBf16, LossAndGradientsWithinTheNaiveBf16Error) {
  ModelConfig c;
  c.hidden_size = 64;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.intermediate_size = 96;
  c.vocab_size = 67;
  c.tie_word_embeddings = false;
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(static_cast<uint32_t>(seed));
  const HostBatch h = random_batch(rng, 2, 37, c.vocab_size);
  NaiveBf16Backend naive_backend;
  const StepResult fp32 = forward_backward(cpu_backend(), c, Precision::fp32, seed, h);
  const StepResult bf16 = forward_backward(cpu_backend(), c, Precision::bf16, seed, h);
  const StepResult naive = forward_backward(naive_backend, c, Precision::bf16, seed, h);
  const double loss_err = std::abs(bf16.loss - fp32.loss) / fp32.loss,
               naive_loss_err = std::abs(naive.loss - fp32.loss) / fp32.loss;
  std::printf("[  error   ] loss %.4f: bf16 %.2e naive %.2e\n", fp32.loss, loss_err, naive_loss_err);
  EXPECT_LE(loss_err, 2 * naive_loss_err + 1e-6);
  double smallest_naive = 1;
  for (size_t i = 0; i < fp32.grads.size(); ++i) {
    const double e = rel_l2(bf16.grads[i], fp32.grads[i]), en = rel_l2(naive.grads[i], fp32.grads[i]);
    std::printf("[  error   ] gradient %zu: bf16 %.2e naive %.2e\n", i, e, en);
    EXPECT_LE(e, 2 * en + 1e-5) << "parameter " << i;
    smallest_naive = std::min(smallest_naive, en);
  }
  EXPECT_GT(smallest_naive, 1e-4) << "the naive bf16 model is as exact as fp32: it does not round";
}

// The copy task in bf16 learns as fp32 does, from the same seed: the loss of the last 10 of 300 steps within 3% of the
// fp32 run's (both near the converged ~2.05: the first copy is random), and the long-range loss falls as far.
TEST(ModelBf16, CopyTaskLearnsLikeFp32) {
  Config c = tiny_copy_config(300, "");
  auto tail = [](const std::vector<double>& losses) {
    double s = 0;
    for (size_t i = losses.size() - 10; i < losses.size(); ++i) s += losses[i] / 10;
    return s;
  };
  auto long_tail = [&](const TrainResult& r) {
    std::vector<double> l;
    for (const auto& x : r.long_losses) l.push_back(x.value_or(0));
    return tail(l);
  };
  c.log.dir = testing::TempDir() + "ringtrain_bf16_fp32";
  const TrainResult fp32 = train_run(c, {.print = false});
  c.train.precision = "bf16";
  c.log.dir = testing::TempDir() + "ringtrain_bf16_bf16";
  const TrainResult bf16 = train_run(c, {.print = false});
  std::printf("steps 291-300: loss fp32 %.4f bf16 %.4f, long-range fp32 %.4f bf16 %.4f\n", tail(fp32.losses),
              tail(bf16.losses), long_tail(fp32), long_tail(bf16));
  EXPECT_NEAR(tail(bf16.losses), tail(fp32.losses), 0.03 * tail(fp32.losses));
  EXPECT_LT(long_tail(bf16), std::max(0.1, 2 * long_tail(fp32)));
}

}  // namespace
}  // namespace rt
