// The whole Llama model on the CUDA backend against the CPU backend: the same weights and batch give the same losses,
// gradients and AdamW update, within the GPU's precision (TF32 GEMMs, bf16 attention inputs). Skips, with the reason,
// where this build has no CUDA or no GPU is visible. Every run draws a fresh seed; RT_TEST_SEED=<seed> replays it.
#include <gtest/gtest.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "attention/sequence_attention.h"
#include "tests/device_skip.h"
#include "tests/test_numerics.h"
#include "tests/trainer/host_batch.h"
#include "trainer/model.h"
#include "trainer/optimizer.h"

namespace rt {
namespace {

// One forward+backward of a freshly initialised model on `device`, then one AdamW step from `step_grads` (the
// gradients just computed where none are given); everything on the host after.
struct StepResult {
  std::vector<float> losses, grads, params_after;
};

StepResult train_step(Device device, const ModelConfig& mc, const HostBatch& h, uint64_t seed,
                      const std::vector<float>* step_grads = nullptr, Precision precision = Precision::fp32) {
  Backend& be = backend_for(device);
  auto attention = local_attention_make(be, AttentionKernel::flash, precision);
  LlamaModel model(mc, be, *attention, precision);
  model.init_weights(seed);
  const int64_t n = h.batch * h.seq;
  const Batch b = to_device(be, h);
  Tensor losses = be.alloc({n});
  be.fill(model.params().grads(), 0.f);
  model.forward_backward(b, 1.f / static_cast<float>(n), losses);
  StepResult r;
  r.losses.resize(static_cast<size_t>(n));
  r.grads.resize(static_cast<size_t>(model.params().count()));
  r.params_after.resize(r.grads.size());
  be.download(losses, r.losses.data());
  be.download(model.params().grads(), r.grads.data());
  if (step_grads) be.upload(step_grads->data(), model.params().grads());
  TrainConfig tc;
  tc.weight_decay = 0.1;
  AdamW opt(be, model.params(), tc);
  opt.step(1e-3f, 1.f);
  be.download(model.params().values(), r.params_after.data());
  return r;
}

// train.precision = bf16 on both: every linear layer's inputs rounded to bf16 (the GPU's bf16 tensor cores, the
// CPU's oneDNN bf16 matmul, or its fallback), so the two backends compute the same products.
void expect_gpu_matches_cpu(Precision precision) {
  const uint64_t seed = test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (replay: RT_TEST_SEED=" + std::to_string(seed) + ")");
  ModelConfig mc;
  mc.hidden_size = 96;  // head dim 24: the CUDA flash kernels pad it to 32
  mc.num_hidden_layers = 2;
  mc.num_attention_heads = 4;
  mc.num_key_value_heads = 2;
  mc.intermediate_size = 136;
  mc.vocab_size = 61;
  mc.tie_word_embeddings = false;
  mc.initializer_range = 0.1;
  std::mt19937 rng(static_cast<uint32_t>(seed));
  const HostBatch h = random_batch(rng, 2, 77, mc.vocab_size);

  const StepResult cpu = train_step(Device::cpu, mc, h, seed, nullptr, precision);
  const StepResult gpu = train_step(Device::cuda, mc, h, seed, &cpu.grads, precision);
  // A different batch on the CPU: how far apart two genuinely different results are, so that the tolerances below
  // are seen to be tight.
  const StepResult other = train_step(Device::cpu, mc, random_batch(rng, 2, 77, mc.vocab_size), seed, nullptr, precision);

  // The GPU rounds GEMM inputs to TF32 (2^-11 relative) and attention inputs to bf16 (2^-9); the op tests bound each
  // kernel at that level (<= 5e-3 relative for attention). Through two layers, forward and backward, the errors add
  // up to a few times that; a wrong kernel, layout or launch is off by O(1).
  const double e_loss = rel_err_l2(gpu.losses, as<double>(cpu.losses));
  const double e_grad = rel_err_l2(gpu.grads, as<double>(cpu.grads));
  const double e_param = rel_err_l2(gpu.params_after, as<double>(cpu.params_after));
  const double d_grad = rel_err_l2(other.grads, as<double>(cpu.grads));
  std::printf(
      "[  error   ] %s: losses %.2e  gradients %.2e  parameters after AdamW %.2e  (another batch: gradients %.2e)\n",
      precision_name(precision), e_loss, e_grad, e_param, d_grad);
  EXPECT_LT(e_loss, 5e-3);
  EXPECT_LT(e_grad, 2e-2);
  // AdamW from the same gradients: a few fp32 roundings per element (its first step, ~lr * sign(g), would turn the
  // GPU's gradient rounding into O(lr) differences where g is near 0, so it is not given the GPU's own gradients).
  EXPECT_LT(e_param, 1e-6);
  EXPECT_GT(d_grad, 50 * e_grad) << "the comparison cannot tell a wrong gradient from a right one";
}

TEST(CudaModel, TrainStepMatchesCpu) {
  RT_SKIP_UNLESS_DEVICE(Device::cuda);
  expect_gpu_matches_cpu(Precision::fp32);
}

TEST(CudaModel, TrainStepMatchesCpuInBf16) {
  RT_SKIP_UNLESS_DEVICE(Device::cuda);
  expect_gpu_matches_cpu(Precision::bf16);
}

}  // namespace
}  // namespace rt
