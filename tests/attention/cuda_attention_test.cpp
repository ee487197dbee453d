// Tests of the CUDA attention kernels (through attention_ops_for(Device::cuda)) against double precision.
//
// Method (DESIGN.md "Conventions"): one naive attention, templated on the element type T and on a rounding applied
// where the CUDA kernels round (attention/cuda/attention_cuda.h: q, k, v, dout into the products, and P and dS as
// they enter theirs). T = double without rounding is the reference; T = float with bf16 rounding is the "naive
// same-precision" version, whose error sets the tolerance: err(kernel) <= 2 * err(naive) + kFloor, with
// err(x) = ||x - ref||_2 / ||ref||_2 (normwise, as tests/attention/attention_test.cpp explains). The fp32 kernels
// (delta, the ring's merge) take the CPU kernel as their naive version. Every test skips, with the reason, where
// this build has no CUDA or no GPU is visible. Every test draws a fresh seed; RT_TEST_SEED=<seed> replays it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "attention/attention_kernels.h"
#include "attention/attention_ops.h"
#include "attention/sequence_attention.h"
#include "core/backend.h"
#include "tests/attention/attention_tolerance.h"
#include "tests/attention/naive_rounded.h"
#include "tests/device_skip.h"

namespace rt {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// ---------------------------------------------------------------- fixture
class CudaAttentionTest : public ::testing::Test {
 protected:
  void SetUp() override { RT_SKIP_UNLESS_DEVICE(Device::cuda); }

  const uint64_t seed_ = test_seed();
  const ::testing::ScopedTrace trace_{__FILE__, __LINE__,
                                      "seed " + std::to_string(seed_) + " (replay: RT_TEST_SEED=" +
                                          std::to_string(seed_) + ")"};
  std::mt19937_64 gen_{seed_};

  Backend& gpu() { return backend_for(Device::cuda); }
  const AttentionOps& ops() { return attention_ops_for(Device::cuda); }

  VecF randn(int64_t n, float sigma = 1.f) {
    std::normal_distribution<float> nd(0.f, sigma);
    VecF x(static_cast<size_t>(n));
    for (float& e : x) e = nd(gen_);
    return x;
  }
  Tensor on_gpu(const VecF& x) {
    Tensor t = gpu().alloc({static_cast<int64_t>(x.size())});
    gpu().upload(x.data(), t);
    return t;
  }
  VecF read(const Tensor& t) {
    VecF x(static_cast<size_t>(t.numel()));
    gpu().download(t, x.data());
    return x;
  }

  // Forward and backward of one block pair on the GPU, checked against the naive versions. dq, dk, dv start from
  // random values, so the check also covers accumulation (+=).
  // doc_start: per query, where its document starts (document masking), or empty.
  void check(const std::string& name, AttentionProblem p, const std::vector<int32_t>& doc_start = {}) {
    p.scale = 1.0f / std::sqrt(static_cast<float>(p.D));
    const int64_t nq = p.Tq * p.Hq * p.D, nk = p.Tk * p.Hk * p.D;
    const VecF q = randn(nq), k = randn(nk), v = randn(nk), dout = randn(nq);
    const VecF dq0 = randn(nq), dk0 = randn(nk), dv0 = randn(nk);
    Tensor tq = on_gpu(q), tk = on_gpu(k), tv = on_gpu(v), tdo = on_gpu(dout), to = gpu().alloc({nq}),
           tl = gpu().alloc({p.Hq * p.Tq}), td = gpu().alloc({p.Hq * p.Tq}), tdq = on_gpu(dq0), tdk = on_gpu(dk0),
           tdv = on_gpu(dv0);
    AttentionProblem on_device = p;
    Tensor tdoc;
    if (!doc_start.empty()) {
      tdoc = gpu().alloc({p.Tq}, DType::i32);
      gpu().upload(doc_start.data(), tdoc);
      on_device.q_doc_start = tdoc.i32();
      p.q_doc_start = doc_start.data();  // the naive versions read it on the host
    }
    ops().forward(on_device, tq.f32(), tk.f32(), tv.f32(), to.f32(), tl.f32());
    ops().delta(on_device, to.f32(), tdo.f32(), td.f32());
    ops().backward(on_device, tq.f32(), tk.f32(), tv.f32(), tdo.f32(), tl.f32(), td.f32(), tdq.f32(), tdk.f32(),
                   tdv.f32());

    const Result<double> ref = naive<double>(p, q, k, v, dout, [](float x) { return x; });
    const Result<float> nai = naive<float>(p, q, k, v, dout, bf16);
    auto minus = [](VecF a, const VecF& b) {
      for (size_t i = 0; i < a.size(); ++i) a[i] -= b[i];
      return a;
    };
    const std::string tag = name + " Tq=" + std::to_string(p.Tq) + " Tk=" + std::to_string(p.Tk) + " H=" +
                            std::to_string(p.Hq) + "/" + std::to_string(p.Hk) + " D=" + std::to_string(p.D);
    expect_close(tag + " o", read(to), nai.o, ref.o);
    expect_close(tag + " lse", read(tl), nai.lse, ref.lse);
    expect_close(tag + " dq+=", minus(read(tdq), dq0), nai.dq, ref.dq);
    expect_close(tag + " dk+=", minus(read(tdk), dk0), nai.dk, ref.dk);
    expect_close(tag + " dv+=", minus(read(tdv), dv0), nai.dv, ref.dv);
  }
};

AttentionProblem problem(int64_t Tq, int64_t Tk, int64_t Hq, int64_t Hk, int64_t D, bool causal, int64_t q_offset = 0,
                         int64_t k_offset = 0) {
  return AttentionProblem{Tq, Tk, Hq, Hk, D, causal, q_offset, k_offset, 0.f};
}

// Runs everywhere (no GPU needed): the naive attention this file measures against is itself right. Its double
// version must match the CPU flash kernels to fp32 accuracy (2x its float version's error, as attention_test holds
// them), and its bf16 version must really be coarser than fp32.
TEST(CudaAttentionNaive, MatchesCpuFlashKernels) {
  std::mt19937_64 gen(test_seed());
  std::normal_distribution<float> nd;
  for (AttentionProblem p : {AttentionProblem{75, 75, 4, 2, 32, true, 0, 0, 0.f},
                             AttentionProblem{40, 60, 2, 2, 16, true, 30, 20, 0.f},
                             AttentionProblem{33, 50, 2, 1, 16, false, 0, 0, 0.f}}) {
    p.scale = 1.0f / std::sqrt(static_cast<float>(p.D));
    auto randn = [&](int64_t n) {
      VecF x(static_cast<size_t>(n));
      for (float& e : x) e = nd(gen);
      return x;
    };
    const int64_t nq = p.Tq * p.Hq * p.D, nk = p.Tk * p.Hk * p.D;
    const VecF q = randn(nq), k = randn(nk), v = randn(nk), dout = randn(nq);
    VecF o(nq), lse(p.Hq * p.Tq), delta(p.Hq * p.Tq), dq(nq), dk(nk), dv(nk);
    attention_flash_forward(p, q.data(), k.data(), v.data(), o.data(), lse.data());
    attention_delta(p, o.data(), dout.data(), delta.data());
    attention_flash_backward(p, q.data(), k.data(), v.data(), dout.data(), lse.data(), delta.data(), dq.data(),
                             dk.data(), dv.data());
    const Result<double> ref = naive<double>(p, q, k, v, dout, [](float x) { return x; });
    const Result<float> f32 = naive<float>(p, q, k, v, dout, [](float x) { return x; });
    const Result<float> b16 = naive<float>(p, q, k, v, dout, bf16);
    const std::string tag = "naive vs CPU flash, causal=" + std::to_string(p.causal) + " offsets " +
                            std::to_string(p.q_offset) + "/" + std::to_string(p.k_offset);
    expect_close(tag + " o", o, f32.o, ref.o);
    expect_close(tag + " lse", lse, f32.lse, ref.lse);
    expect_close(tag + " dq", dq, f32.dq, ref.dq);
    expect_close(tag + " dk", dk, f32.dk, ref.dk);
    expect_close(tag + " dv", dv, f32.dv, ref.dv);
    EXPECT_GT(rel_err_l2(b16.o, ref.o), 10 * rel_err_l2(f32.o, ref.o)) << "the bf16 rounding is not applied";
    EXPECT_GT(rel_err_l2(b16.dq, ref.dq), 10 * rel_err_l2(f32.dq, ref.dq)) << "the bf16 rounding is not applied";
  }
}

// Odd lengths around the tile edges (64 keys / 128 queries forward, 128 keys / 64 queries backward).
TEST_F(CudaAttentionTest, CausalSelfAttentionOddLengths) {
  for (int64_t T : {1, 37, 129, 257}) check("causal", problem(T, T, 2, 2, 64, true));
}

// D is zero-padded to 32, 64 or 128 inside the kernels.
TEST_F(CudaAttentionTest, HeadDims) {
  for (int64_t D : {32, 48, 100, 128}) check("causal", problem(133, 133, 2, 2, D, true));
}

TEST_F(CudaAttentionTest, GroupedAndMultiQuery) {
  check("gqa", problem(150, 150, 6, 2, 64, true));
  check("mqa", problem(97, 97, 4, 1, 32, true));
}

TEST_F(CudaAttentionTest, NonCausalDifferentLengths) { check("full", problem(70, 201, 2, 1, 64, false)); }

// The block pairs of ring attention: keys entirely before the queries (all visible), partly after them (the
// diagonal at an offset), and starting after the first queries (those rows see nothing: o = 0, lse = -inf).
TEST_F(CudaAttentionTest, RingBlockOffsets) {
  check("keys before queries", problem(90, 120, 2, 2, 64, true, 256, 0));
  check("diagonal at an offset", problem(90, 120, 2, 2, 64, true, 100, 60));
  check("rows that see no key", problem(150, 100, 2, 2, 64, true, 0, 40));
}

// Document masking (packed documents): a query sees only keys of its own document. Documents of 1 token, shorter
// and longer than the 64-key tiles; on the diagonal block and on a ring block whose first rows see no key.
TEST_F(CudaAttentionTest, DocumentMask) {
  auto starts = [](int64_t Tq, int64_t q_offset, std::vector<int64_t> lengths) {
    std::vector<int32_t> doc(static_cast<size_t>(Tq));
    for (int64_t i = 0, start = 0, next = 0, d = 0; i < Tq; ++i) {
      while (next <= q_offset + i) start = next, next += lengths[static_cast<size_t>(d++) % lengths.size()];
      doc[static_cast<size_t>(i)] = static_cast<int32_t>(start);
    }
    return doc;
  };
  check("documents 50,1,17,90", problem(203, 203, 2, 1, 64, true), starts(203, 0, {50, 1, 17, 90}));
  check("documents 130 (tiles skipped)", problem(300, 300, 2, 2, 32, true), starts(300, 0, {130}));
  check("earlier keys, documents 40,100", problem(70, 90, 4, 2, 64, true, 130, 20), starts(70, 130, {40, 100}));
}

// delta = rowsum(dout * o) and the ring's merge, against double precision with the CPU kernel as naive version.
TEST_F(CudaAttentionTest, DeltaMergeGatherMatchCpu) {
  const int64_t T = 77, H = 3, D = 40, n = 30, row = 20;
  AttentionProblem p = problem(T, T, H, H, D, true);
  p.scale = 1.f;
  const VecF o = randn(T * H * D), dout = randn(T * H * D);
  Tensor td = gpu().alloc({H * T}), to = on_gpu(o), tdo = on_gpu(dout);
  ops().delta(p, to.f32(), tdo.f32(), td.f32());
  VecF delta_cpu(H * T);
  attention_cpu_ops().delta(p, o.data(), dout.data(), delta_cpu.data());
  VecD delta_ref(H * T);
  for (int64_t i = 0; i < T; ++i)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t d = 0; d < D; ++d) delta_ref[h * T + i] += double(o[(i * H + h) * D + d]) * dout[(i * H + h) * D + d];
  expect_close("delta", read(td), delta_cpu, delta_ref);

  // Running (o, lse) with some rows not yet seen (-inf); a block (ob, lb) invisible to some rows (-inf).
  VecF lse = randn(H * T, 3.f), ob = randn(n * H * D), lb = randn(H * n, 3.f);
  for (int64_t h = 0; h < H; ++h) {
    lse[h * T + row + 1] = -INFINITY;
    lb[h * n + 2] = -INFINITY;
    lse[h * T + row + 3] = lb[h * n + 3] = -INFINITY;
  }
  Tensor tlse = on_gpu(lse), tob = on_gpu(ob), tlb = on_gpu(lb), tom = on_gpu(o);
  ops().merge(tob.f32(), tlb.f32(), n, row, T, H, D, tom.f32(), tlse.f32());
  VecF o_cpu = o, lse_cpu = lse;
  attention_cpu_ops().merge(ob.data(), lb.data(), n, row, T, H, D, o_cpu.data(), lse_cpu.data());
  VecD o_ref(o.begin(), o.end()), lse_ref(lse.begin(), lse.end());
  for (int64_t h = 0; h < H; ++h)
    for (int64_t i = 0; i < n; ++i) {
      const double b = lb[h * n + i], l = lse_ref[h * T + row + i];
      if (b == -kInf) continue;
      const double w = l == -kInf ? 1.0 : 1.0 / (1.0 + std::exp(l - b));  // weight of the block
      for (int64_t d = 0; d < D; ++d) {
        double& x = o_ref[((row + i) * H + h) * D + d];
        x = (1 - w) * x + w * ob[(i * H + h) * D + d];
      }
      lse_ref[h * T + row + i] = l == -kInf ? b : std::max(l, b) + std::log1p(std::exp(-std::abs(l - b)));
    }
  expect_close("merge o", read(tom), o_cpu, o_ref);
  expect_close("merge lse", read(tlse), lse_cpu, lse_ref);

  // A gather is a copy: bit for bit.
  Tensor tg = gpu().alloc({H * n});
  ops().gather_columns(on_gpu(lse).f32(), H, T, row, n, tg.f32());
  VecF g_cpu(H * n);
  attention_cpu_ops().gather_columns(lse.data(), H, T, row, n, g_cpu.data());
  EXPECT_EQ(read(tg), g_cpu);
}

// The local SequenceAttention on the CUDA backend: causal at offset 0, backward overwrites dq, dk, dv.
TEST_F(CudaAttentionTest, LocalSequenceAttentionOnGpu) {
  const int64_t T = 200, Hq = 4, Hk = 2, D = 64;
  auto attn = local_attention_make(gpu());
  AttentionProblem p = problem(T, T, Hq, Hk, D, true);
  p.scale = 1.0f / std::sqrt(static_cast<float>(D));
  const VecF q = randn(T * Hq * D), k = randn(T * Hk * D), v = randn(T * Hk * D), dout = randn(T * Hq * D);
  auto shaped = [&](const VecF& x, int64_t H) { return on_gpu(x).reshape({T, H, D}); };
  Tensor tq = shaped(q, Hq), tk = shaped(k, Hk), tv = shaped(v, Hk), tdo = shaped(dout, Hq);
  Tensor to = gpu().alloc({T, Hq, D}), tl = gpu().alloc({Hq, T}), tdq = shaped(randn(T * Hq * D), Hq),
         tdk = shaped(randn(T * Hk * D), Hk), tdv = shaped(randn(T * Hk * D), Hk);
  attn->forward(tq, tk, tv, Tensor{}, to, tl);
  attn->backward(tq, tk, tv, Tensor{}, to, tl, tdo, tdq, tdk, tdv);
  const Result<double> ref = naive<double>(p, q, k, v, dout, [](float x) { return x; });
  const Result<float> nai = naive<float>(p, q, k, v, dout, bf16);
  expect_close("local o", read(to), nai.o, ref.o);
  expect_close("local lse", read(tl), nai.lse, ref.lse);
  expect_close("local dq", read(tdq), nai.dq, ref.dq);
  expect_close("local dk", read(tdk), nai.dk, ref.dk);
  expect_close("local dv", read(tdv), nai.dv, ref.dv);
}

}  // namespace
}  // namespace rt
