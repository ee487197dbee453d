// Benchmark: CUDA flash attention forward and forward+backward TFLOP/s, checked against the CPU kernels first.
//   cuda_attention_bench --seq 8192 --heads 16 --kv-heads 16 --head-dim 128 --causal 1 --reps 20
// FLOPs (FlashAttention's convention): forward 4*T^2*D*H, halved when causal; backward 2.5x forward. The times
// include the bf16 staging of q, k, v (and dout) that every call does (docs/gpu.md). Before timing, a 333-token
// problem of the same heads and head dim is checked against the CPU fp32 flash kernels: each of o, lse, dq, dk, dv
// must be within a relative L2 error of 2^-6 (a few bf16 roundings of the inputs; a wrong tile or mask is O(1)).
// Prints one result line and a PASS / FAIL verdict; exit 1 on a wrong value, 2 where no GPU can be used.
#include <cuda_runtime.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "attention/attention_kernels.h"
#include "attention/attention_ops.h"
#include "core/backend.h"
#include "core/check.h"
#include "core/cuda/cuda_context.h"

namespace {

using rt::AttentionProblem;
using rt::Tensor;

struct Inputs {
  std::vector<float> q, k, v, dout;
};

Inputs random_inputs(const AttentionProblem& p, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd;
  auto randn = [&](int64_t n) {
    std::vector<float> x(static_cast<size_t>(n));
    for (float& e : x) e = nd(rng);
    return x;
  };
  return {randn(p.Tq * p.Hq * p.D), randn(p.Tk * p.Hk * p.D), randn(p.Tk * p.Hk * p.D), randn(p.Tq * p.Hq * p.D)};
}

// The GPU buffers of one problem and the calls the benchmark times.
struct GpuRun {
  rt::Backend& be = rt::backend_for(rt::Device::cuda);
  const rt::AttentionOps& ops = rt::attention_ops_for(rt::Device::cuda);
  AttentionProblem p;
  Tensor q, k, v, dout, o, lse, delta, dq, dk, dv;

  GpuRun(const AttentionProblem& problem, const Inputs& in) : p(problem) {
    auto up = [&](const std::vector<float>& x) {
      Tensor t = be.alloc({static_cast<int64_t>(x.size())});
      be.upload(x.data(), t);
      return t;
    };
    q = up(in.q), k = up(in.k), v = up(in.v), dout = up(in.dout);
    o = be.alloc({q.numel()}), dq = be.alloc({q.numel()}), dk = be.alloc({k.numel()}), dv = be.alloc({k.numel()});
    lse = be.alloc({p.Hq * p.Tq}), delta = be.alloc({p.Hq * p.Tq});
  }
  void forward() { ops.forward(p, q.f32(), k.f32(), v.f32(), o.f32(), lse.f32()); }
  void backward() {
    ops.delta(p, o.f32(), dout.f32(), delta.f32());
    ops.backward(p, q.f32(), k.f32(), v.f32(), dout.f32(), lse.f32(), delta.f32(), dq.f32(), dk.f32(), dv.f32());
  }
  std::vector<float> read(const Tensor& t) {
    std::vector<float> x(static_cast<size_t>(t.numel()));
    be.download(t, x.data());
    return x;
  }
};

double rel_l2(const std::vector<float>& got, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (!std::isfinite(ref[i])) {
      if (got[i] != ref[i]) return INFINITY;
      continue;
    }
    num += (double(got[i]) - ref[i]) * (double(got[i]) - ref[i]);
    den += double(ref[i]) * ref[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

// o, lse, dq, dk, dv of a small problem on the GPU against the CPU fp32 flash kernels; prints the errors.
bool check_small(AttentionProblem p) {
  p.Tq = p.Tk = 333;
  const Inputs in = random_inputs(p, 7);
  GpuRun gpu(p, in);
  gpu.forward();
  gpu.backward();
  std::vector<float> o(in.q.size()), lse(p.Hq * p.Tq), delta(p.Hq * p.Tq), dq(in.q.size()), dk(in.k.size()),
      dv(in.k.size());
  rt::attention_flash_forward(p, in.q.data(), in.k.data(), in.v.data(), o.data(), lse.data());
  rt::attention_delta(p, o.data(), in.dout.data(), delta.data());
  rt::attention_flash_backward(p, in.q.data(), in.k.data(), in.v.data(), in.dout.data(), lse.data(), delta.data(),
                               dq.data(), dk.data(), dv.data());
  const double limit = std::ldexp(1.0, -6);
  bool ok = true;
  std::printf("check T=333 against the CPU flash kernels (relative L2, limit %.1e):", limit);
  for (auto [name, got, ref] : {std::tuple{"o", gpu.read(gpu.o), o}, std::tuple{"lse", gpu.read(gpu.lse), lse},
                                std::tuple{"dq", gpu.read(gpu.dq), dq}, std::tuple{"dk", gpu.read(gpu.dk), dk},
                                std::tuple{"dv", gpu.read(gpu.dv), dv}}) {
    const double e = rel_l2(got, ref);
    std::printf(" %s %.1e", name, e);
    ok = ok && e <= limit;
  }
  std::printf("\n");
  return ok;
}

// Median milliseconds of `fn` over reps, timed with CUDA events on the compute stream (after one warm-up).
template <class Fn>
double median_ms(Fn fn, int reps) {
  cudaStream_t s = rt::cuda_stream();
  cudaEvent_t start, stop;
  RT_CHECK_CUDA(cudaEventCreate(&start));
  RT_CHECK_CUDA(cudaEventCreate(&stop));
  fn();
  std::vector<double> ms;
  for (int r = 0; r < reps; ++r) {
    RT_CHECK_CUDA(cudaEventRecord(start, s));
    fn();
    RT_CHECK_CUDA(cudaEventRecord(stop, s));
    RT_CHECK_CUDA(cudaEventSynchronize(stop));
    float t = 0;
    RT_CHECK_CUDA(cudaEventElapsedTime(&t, start, stop));
    ms.push_back(t);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"CUDA flash attention benchmark"};
  int64_t seq = 8192, heads = 16, kv_heads = 0, head_dim = 128;
  int causal = 1, reps = 20;
  app.add_option("--seq", seq, "tokens");
  app.add_option("--heads", heads, "query heads");
  app.add_option("--kv-heads", kv_heads, "key/value heads (0 = heads)");
  app.add_option("--head-dim", head_dim, "head dim (even, at most 128)");
  app.add_option("--causal", causal, "1 = causal");
  app.add_option("--reps", reps, "timed repetitions");
  CLI11_PARSE(app, argc, argv);
  const std::string why = rt::device_unavailable_reason(rt::Device::cuda);
  if (!why.empty()) {
    std::printf("SKIP: %s\n", why.c_str());
    return 2;
  }
  cudaDeviceProp prop;
  RT_CHECK_CUDA(cudaGetDeviceProperties(&prop, rt::cuda_device()));
  AttentionProblem p{seq, seq, heads, kv_heads ? kv_heads : heads, head_dim, causal != 0, 0, 0,
                     1.0f / std::sqrt(static_cast<float>(head_dim))};
  if (!check_small(p)) {
    std::printf("FAIL: the GPU kernels disagree with the CPU kernels; no speed reported\n");
    return 1;
  }
  GpuRun run(p, random_inputs(p, 1));
  const double fwd_ms = median_ms([&] { run.forward(); }, reps);
  const double fb_ms = median_ms([&] { run.forward(), run.backward(); }, reps);
  const double fwd_flop = 4.0 * double(seq) * double(seq) * double(head_dim) * double(heads) / (causal ? 2 : 1);
  std::printf("cuda flash gpu=\"%s\" T=%ld H=%ld Hkv=%ld d=%ld causal=%d fwd_ms=%.3f fwd_tflops=%.1f fwdbwd_ms=%.3f "
              "fwdbwd_tflops=%.1f\n",
              prop.name, seq, heads, p.Hk, head_dim, causal, fwd_ms, fwd_flop / fwd_ms / 1e9, fb_ms,
              3.5 * fwd_flop / fb_ms / 1e9);
  std::printf("PASS: checked against the CPU kernels before timing\n");
  return 0;
}
