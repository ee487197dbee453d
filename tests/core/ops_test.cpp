// Tests of every Backend op against double-precision references; tolerance = 2x a naive same-precision version's error.
// One source, two binaries: ops_test runs it on the CPU backend (ops_test_cpu.cpp), cuda_ops_test on the CUDA
// backend (cuda_ops_test.cpp; every test skips, with the reason, where no GPU is visible). The CPU backend is the
// reference the CUDA one is held to: the same references, inputs and tolerances.
//
// Method (DESIGN.md "Conventions"): each op has a straightforward loop implementation templated on the
// element type T. T = double is the reference; T = float is the "naive fp32" version whose error against the
// reference sets the tolerance: max|kernel - ref| / max|ref| <= 2 * naive_error + kFloor. Backward ops are
// checked against central finite differences of the reference forward (loss = sum(y * r), r random; step
// 1e-6 relative), and the naive fp32 backward's error against those differences sets the tolerance. The
// differences are taken in long double: in double, their own error reached ~FLT_EPSILON / 3 for
// cross-entropy with logits ~ +-50; each backward check also requires the test's double gradient to match
// them within FLT_EPSILON / 4. Every test draws a fresh seed (printed in the failure trace);
// RT_TEST_SEED=<seed> replays it. Each check prints one "[  error   ]" line: kernel error, naive error, ratio.
// GEMM on CUDA runs on TF32 tensor cores (core/cuda/gemm.cpp): its naive version multiplies the inputs truncated to
// TF32 (10 mantissa bits, the coarsest conversion a TF32 unit may apply) with fp32 accumulation.
// The bf16 GEMM (gemm_bf16) rounds its inputs to bf16 on every device: its reference is the double product of the
// rounded inputs and its naive version the fp32 product of the same (so a wrong rounding, not only a wrong sum, fails);
// against the unrounded inputs its error is bf16's, which the naive version rounding the same way sets.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <ostream>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "core/backend.h"
#include "core/bf16.h"
#include "tests/device_skip.h"
#include "tests/test_numerics.h"

namespace rt {

// The device this binary tests: ops_test_cpu.cpp or cuda_ops_test.cpp.
Device ops_test_device();

// GoogleTest prints the parameter by this name.
void PrintTo(Device device, std::ostream* os) { *os << (device == Device::cuda ? "cuda" : "cpu"); }

namespace {

using VecI = Vec<int32_t>;
using Shape = std::vector<int64_t>;

constexpr double kFdSelfTol = 0.25 * FLT_EPSILON;  // the test's own double gradient vs finite differences

int64_t numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

std::string str(const Shape& s) {
  std::string out = "(";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(s[i]);
  }
  out += ')';
  return out;
}

// The one comparator: kernel error <= 2 * naive fp32 error + kFloor, both against ref; prints the ratio.
template <class K>
void expect_close(const std::string& what, const Vec<K>& kernel, const VecF& naive, const VecD& ref) {
  const double ek = rel_err_max(kernel, ref), en = rel_err_max(naive, ref);
  const std::string ratio = en > 0 ? std::to_string(ek / en).substr(0, 4) : "-";
  std::printf("[  error   ] %-48s kernel %.2e  naive %.2e  ratio %s\n", what.c_str(), ek, en, ratio.c_str());
  EXPECT_LE(ek, 2 * en + kFloor) << what << ": kernel error " << ek << " vs naive fp32 error " << en;
}

// Gradient check: finite differences are the truth; the test's own double gradient must agree with them far
// below float precision (this validates the naive backward the tolerance comes from).
void expect_grad(const std::string& what, const VecF& kernel, const VecF& naive, const VecD& analytic,
                 const VecD& fd) {
  EXPECT_LE(rel_err_max(analytic, fd), kFdSelfTol) << what << ": the test's double gradient disagrees with FD";
  expect_close(what, kernel, naive, fd);
}

template <class T>
T dot(const Vec<T>& a, const Vec<T>& b) {
  T s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// Central differences of f at x, step 1e-6 relative, in long double.
VecD fd_grad(const std::function<long double(const VecL&)>& f, const VecF& x0) {
  VecL x(x0.begin(), x0.end());
  VecD g(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const long double xi = x[i], h = 1e-6L * std::max(1.0L, std::abs(xi));
    const long double xp = xi + h, xm = xi - h;
    x[i] = xp;
    const long double fp = f(x);
    x[i] = xm;
    const long double fm = f(x);
    x[i] = xi;
    g[i] = static_cast<double>((fp - fm) / (xp - xm));
  }
  return g;
}

template <class T>
Vec<T> plus(Vec<T> a, const Vec<T>& b) {
  for (size_t i = 0; i < a.size(); ++i) a[i] += b[i];
  return a;
}

// Every test: a fresh seed in the failure trace, a generator, the backend under test and tensor helpers.
class OpsTest : public ::testing::TestWithParam<Device> {
 protected:
  void SetUp() override { RT_SKIP_UNLESS_DEVICE(GetParam()); }

  const uint64_t seed_ = test_seed();
  const ::testing::ScopedTrace trace_{__FILE__, __LINE__,
                                      "seed " + std::to_string(seed_) + " (replay: RT_TEST_SEED=" +
                                          std::to_string(seed_) + ")"};
  std::mt19937_64 gen_{seed_};
  // The CPU backend stands in where the device is unusable; SetUp then skips the test before it runs.
  Backend& be_ = device_unavailable_reason(GetParam()).empty() ? backend_for(GetParam()) : cpu_backend();

  VecF uniform(int64_t n, double lo, double hi) {
    std::uniform_real_distribution<double> d(lo, hi);
    VecF v(static_cast<size_t>(n));
    for (float& x : v) x = static_cast<float>(d(gen_));
    return v;
  }
  int32_t integer(int64_t lo, int64_t hi) {
    return static_cast<int32_t>(std::uniform_int_distribution<int64_t>(lo, hi)(gen_));
  }

  template <class T>
  Tensor tensor(const Vec<T>& v, Shape shape) {
    EXPECT_EQ(numel(shape), static_cast<int64_t>(v.size()));
    Tensor t = be_.alloc(std::move(shape), std::is_same_v<T, float> ? DType::f32 : DType::i32);
    be_.upload(v.data(), t);
    return t;
  }
  VecF read(const Tensor& t) {
    VecF v(static_cast<size_t>(t.numel()));
    be_.download(t, v.data());
    return v;
  }
};

// ---------------------------------------------------------------- GEMM
// c (M,N) = alpha op(a) op(b) + beta c in T; a is (M,K) or (K,M) when ta, b is (K,N) or (N,K) when tb.
template <class T>
Vec<T> ref_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const VecF& a, const VecF& b,
                float beta, const VecF& c) {
  Vec<T> out(static_cast<size_t>(M * N));
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      T acc = 0;
      for (int64_t k = 0; k < K; ++k)
        acc += static_cast<T>(ta ? a[k * M + i] : a[i * K + k]) * static_cast<T>(tb ? b[j * K + k] : b[k * N + j]);
      out[i * N + j] = static_cast<T>(alpha) * acc + static_cast<T>(beta) * static_cast<T>(c[i * N + j]);
    }
  return out;
}

// x with the lowest 13 mantissa bits cleared (TF32, truncated).
float tf32_truncate(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  bits &= 0xffffe000u;
  std::memcpy(&x, &bits, sizeof bits);
  return x;
}

// Every (M, N, K) of `sizes` with the four transposes, at alpha 1, beta 0 and at alpha 0.7, beta -1.3:
// run(a shape, ta, b shape, tb, c shape, alpha, beta).
template <class Run>
void for_each_gemm_case(std::initializer_list<std::array<int64_t, 3>> sizes, Run run) {
  for (const auto& [M, N, K] : sizes)
    for (int t = 0; t < 4; ++t) {
      const bool ta = t & 1, tb = t & 2;
      const Shape as = ta ? Shape{K, M} : Shape{M, K}, bs = tb ? Shape{N, K} : Shape{K, N};
      run(as, ta, bs, tb, Shape{M, N}, 1.f, 0.f);
      run(as, ta, bs, tb, Shape{M, N}, 0.7f, -1.3f);
    }
}

class GemmTest : public OpsTest {
 protected:
  // The inputs of the naive same-precision GEMM: as given (fp32), or rounded as a TF32 tensor core may (CUDA).
  VecF naive_inputs(VecF x) const {
    if (GetParam() == Device::cuda)
      for (float& v : x) v = tf32_truncate(v);
    return x;
  }
  static VecF bf16_rounded(VecF x) {
    for (float& v : x) v = bf16_round(v);
    return x;
  }

  // Matrices are (dim 0, product of the other dims), as the Backend views them. bf16: gemm_bf16, held to the double
  // product of the rounded inputs and, for the rounding's own error, of the exact ones.
  void run(Shape ash, bool ta, Shape bsh, bool tb, Shape csh, float alpha, float beta,
           Precision precision = Precision::fp32) {
    const int64_t ar = ash[0], ac = numel(ash) / ar, br = bsh[0], bc = numel(bsh) / br;
    const int64_t M = ta ? ac : ar, K = ta ? ar : ac, N = tb ? br : bc;
    const VecF a = uniform(numel(ash), -1, 1), b = uniform(numel(bsh), -1, 1), c0 = uniform(numel(csh), -1, 1);
    Tensor tc = tensor(c0, csh);
    be_.gemm(precision, tensor(a, ash), ta, tensor(b, bsh), tb, tc, alpha, beta);
    const std::string what = std::string(precision == Precision::bf16 ? "gemm_bf16 " : "gemm ") + str(ash) +
                             (ta ? "^T" : "") + " @ " + str(bsh) + (tb ? "^T" : "") + " a=" +
                             std::to_string(alpha).substr(0, 4) + " b=" + std::to_string(beta).substr(0, 4);
    const VecD exact = ref_gemm<double>(ta, tb, M, N, K, alpha, a, b, beta, c0);
    if (precision == Precision::fp32) {
      expect_close(what, read(tc), ref_gemm<float>(ta, tb, M, N, K, alpha, naive_inputs(a), naive_inputs(b), beta, c0),
                   exact);
      return;
    }
    const VecF ra = bf16_rounded(a), rb = bf16_rounded(b), got = read(tc);
    const VecF naive = ref_gemm<float>(ta, tb, M, N, K, alpha, ra, rb, beta, c0);
    expect_close(what + " vs rounded inputs", got, naive, ref_gemm<double>(ta, tb, M, N, K, alpha, ra, rb, beta, c0));
    expect_close(what + " vs exact inputs", got, naive, exact);
  }
};

TEST_P(GemmTest, Bf16AllTransposesOddSizesAlphaBeta) {
  for_each_gemm_case({{37, 29, 53}, {1, 7, 3}, {65, 129, 515}, {256, 96, 64}},
                     [&](Shape a, bool ta, Shape b, bool tb, Shape c, float alpha, float beta) {
                       run(a, ta, b, tb, c, alpha, beta, Precision::bf16);
                     });
}

// The model's GEMMs: projections, input gradients, weight gradients accumulated into fp32 (beta = 1).
TEST_P(GemmTest, Bf16ModelShapesAndAccumulation) {
  run({7, 3, 11}, false, {26, 3, 11}, true, {7, 2, 13}, 1.f, 0.f, Precision::bf16);  // x @ W^T
  run({7, 2, 13}, false, {26, 3, 11}, false, {7, 3, 11}, 1.f, 1.f, Precision::bf16);  // dx += dy @ W
  run({7, 2, 13}, true, {7, 3, 11}, false, {26, 33}, 1.f, 1.f, Precision::bf16);      // dW += dy^T @ x
}

// Rounding is to nearest, ties to even, as __float2bfloat16_rn and vcvtneps2bf16 do: 1 + 2^-8 (a tie) rounds down to 1,
// 1 + 3 * 2^-8 (a tie) up to 1 + 2^-6, 1 + 2^-8 + 2^-16 up to 1 + 2^-7; the bf16 GEMM multiplies those values.
TEST_P(GemmTest, Bf16RoundsToNearestEven) {
  const VecF a = {1.f + 0x1p-8f, 1.f + 3 * 0x1p-8f, 1.f + 0x1p-8f + 0x1p-16f, -(1.f + 0x1p-8f)};
  const VecF want = {1.f, 1.f + 0x1p-6f, 1.f + 0x1p-7f, -1.f};
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(bf16_round(a[i]), want[i]) << i;
  Tensor c = tensor(VecF(4), {4, 1});
  be_.gemm_bf16(tensor(a, {4, 1}), false, tensor(VecF{1.f}, {1, 1}), false, c, 1.f, 0.f);
  EXPECT_EQ(read(c), want);
}

TEST_P(GemmTest, AllTransposesOddSizesAlphaBeta) {
  for_each_gemm_case({{37, 29, 53}, {1, 7, 3}, {65, 129, 515}},
                     [&](Shape a, bool ta, Shape b, bool tb, Shape c, float alpha, float beta) {
                       run(a, ta, b, tb, c, alpha, beta);
                     });
}

// (N,H,D) tensors are the (N, H*D) matrices: projections, their input gradients and weight gradients.
TEST_P(GemmTest, ThreeDimensionalTensorsAreRowsByRest) {
  run({7, 3, 11}, false, {33, 26}, false, {7, 2, 13}, 1.f, 0.f);   // x @ W
  run({7, 3, 11}, false, {26, 3, 11}, true, {7, 2, 13}, 1.f, 0.f);  // x @ W^T, W (out, in) as (26,3,11)
  run({7, 3, 11}, true, {7, 2, 13}, false, {33, 26}, 0.5f, 1.f);   // dW += x^T @ dy
  run({33, 26}, true, {7, 3, 11}, true, {26, 7}, -1.f, 0.25f);     // both transposed
}

// BLAS convention: beta = 0 means c is not read, so garbage (NaN) in c must not leak into the result.
TEST_P(GemmTest, BetaZeroIgnoresGarbageInC) {
  const VecF a = uniform(5 * 9, -1, 1), b = uniform(9 * 6, -1, 1);
  const VecF nan(30, std::numeric_limits<float>::quiet_NaN());
  Tensor c = tensor(nan, {5, 6});
  be_.gemm(tensor(a, {5, 9}), false, tensor(b, {9, 6}), false, c, 1.f, 0.f);
  expect_close("gemm beta=0 over NaN", read(c),
               ref_gemm<float>(false, false, 5, 6, 9, 1.f, naive_inputs(a), naive_inputs(b), 0.f, VecF(30)),
               ref_gemm<double>(false, false, 5, 6, 9, 1.f, a, b, 0.f, VecF(30)));
}

// ---------------------------------------------------------------- RMSNorm
template <class T>
void ref_rmsnorm(const Vec<T>& x, const Vec<T>& w, T eps, int64_t N, int64_t C, Vec<T>& y, Vec<T>& rstd) {
  y.assign(x.size(), 0);
  rstd.assign(static_cast<size_t>(N), 0);
  for (int64_t n = 0; n < N; ++n) {
    T ss = 0;
    for (int64_t c = 0; c < C; ++c) ss += x[n * C + c] * x[n * C + c];
    const T r = 1 / std::sqrt(ss / static_cast<T>(C) + eps);
    rstd[n] = r;
    for (int64_t c = 0; c < C; ++c) y[n * C + c] = x[n * C + c] * r * w[c];
  }
}

// dx = r (w dy - xhat mean(w dy xhat)), dw += sum_n dy xhat.
template <class T>
void ref_rmsnorm_bwd(const Vec<T>& dy, const Vec<T>& x, const Vec<T>& w, const Vec<T>& rstd, int64_t N, int64_t C,
                     Vec<T>& dx, Vec<T>& dw) {
  dx.assign(x.size(), 0);
  for (int64_t n = 0; n < N; ++n) {
    const T r = rstd[n];
    T dotv = 0;
    for (int64_t c = 0; c < C; ++c) dotv += dy[n * C + c] * w[c] * x[n * C + c] * r;
    const T mean = dotv / static_cast<T>(C);
    for (int64_t c = 0; c < C; ++c) {
      dx[n * C + c] = r * (dy[n * C + c] * w[c] - x[n * C + c] * r * mean);
      dw[c] += dy[n * C + c] * x[n * C + c] * r;
    }
  }
}

TEST_P(OpsTest, RmsnormForwardBackward) {
  const float eps = 1e-5f;
  for (const Shape& xs : {Shape{7, 33}, Shape{7, 3, 11}, Shape{3, 4099}}) {
    const int64_t C = xs.back(), N = numel(xs) / C;
    const bool fd = numel(xs) < 2000;  // larger cases: the double gradient (FD-validated above) is the truth
    for (bool alias : {false, true}) {
      const VecF x = uniform(N * C, -2, 2), w = uniform(C, 0.5, 1.5), dy = uniform(N * C, -1, 1);
      const VecF dw0 = uniform(C, -1, 1);
      Tensor tx = tensor(x, xs), tw = tensor(w, {C}), ty = be_.alloc(xs), tr = be_.alloc({N});
      be_.rmsnorm_forward(tx, tw, eps, ty, tr);
      VecF yf, rf;
      VecD yd, rd;
      ref_rmsnorm(x, w, eps, N, C, yf, rf);
      ref_rmsnorm(as<double>(x), as<double>(w), static_cast<double>(eps), N, C, yd, rd);
      const std::string tag = "rmsnorm " + str(xs);
      if (!alias) {
        expect_close(tag + " y", read(ty), yf, yd);
        expect_close(tag + " rstd", read(tr), rf, rd);
      }

      // backward: dx (optionally aliasing dy), dw += (pre-filled)
      Tensor tdy = tensor(dy, xs), tdw = tensor(dw0, {C});
      Tensor tdx = alias ? tdy : be_.alloc(xs);
      be_.rmsnorm_backward(tdy, tx, tw, tr, tdx, tdw);
      VecF dxf, dwf = dw0;
      VecD dxd, dwd = as<double>(dw0), dwd0 = dwd;
      ref_rmsnorm_bwd(dy, x, w, rf, N, C, dxf, dwf);
      ref_rmsnorm_bwd(as<double>(dy), as<double>(x), as<double>(w), rd, N, C, dxd, dwd);
      VecD dx_true = dxd, dw_true = dwd;
      if (fd) {
        const VecL r = as<long double>(dy), xl = as<long double>(x), wl = as<long double>(w);
        auto loss = [&](const VecL& xx, const VecL& ww) {
          VecL y, rs;
          ref_rmsnorm(xx, ww, static_cast<long double>(eps), N, C, y, rs);
          return dot(y, r);
        };
        dx_true = fd_grad([&](const VecL& xx) { return loss(xx, wl); }, x);
        dw_true = plus(dwd0, fd_grad([&](const VecL& ww) { return loss(xl, ww); }, w));
      }
      const std::string btag = tag + (alias ? " dx=dy" : "") + (fd ? " (FD)" : "");
      expect_grad(btag + " dx", read(tdx), dxf, dxd, dx_true);
      expect_grad(btag + " dw+=", read(tdw), dwf, dwd, dw_true);
    }
  }
}

// ---------------------------------------------------------------- RoPE
// Rotate-half: for i < D/2, a = pos inv_freq[i], (x_i, x_{i+D/2}) -> scale * rotation by sign*a. The angle and its
// cos/sin are computed in double in the naive version too: positions reach ~50000, where a float angle alone
// is off by ~3e-3 rad, and that is a requirement on the kernel rather than a free precision choice. The frequencies
// of each rope type are tested against HF's formulas in tests/core/rope_test.cpp; here, that the kernel applies them.
template <class T>
Vec<T> ref_rope(Vec<T> x, const VecI& pos, int64_t N, int64_t H, int64_t D, const std::vector<double>& inv_freq,
                double scale, double sign) {
  const int64_t half = D / 2;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < half; ++i) {
      const double a = pos[n] * inv_freq[static_cast<size_t>(i)];
      const T c = static_cast<T>(scale * std::cos(a)), s = static_cast<T>(sign * scale * std::sin(a));
      for (int64_t h = 0; h < H; ++h) {
        T* v = x.data() + (n * H + h) * D;
        const T x0 = v[i], x1 = v[i + half];
        v[i] = x0 * c - x1 * s;
        v[i + half] = x1 * c + x0 * s;
      }
    }
  return x;
}

TEST_P(OpsTest, RopeForwardBackward) {
  struct Case {
    int64_t N, H, D;
    RopeParams rope;
  };
  RopeParams yarn;  // a scale of its own (attention_factor), interpolated and extrapolated dimensions
  yarn.type = RopeType::kYarn, yarn.factor = 8, yarn.original_max_position = 512, yarn.attention_factor = 1.2079;
  RopeParams llama3;
  llama3.type = RopeType::kLlama3, llama3.theta = 500000, llama3.factor = 8, llama3.original_max_position = 8192;
  RopeParams theta5e5;
  theta5e5.theta = 500000;
  for (Case k : {Case{7, 3, 6, {}}, Case{7, 3, 10, {}}, Case{9, 2, 64, theta5e5}, Case{5, 1, 128, {}},
                 Case{6, 2, 64, yarn}, Case{6, 2, 128, llama3}}) {
    std::vector<double> inv_freq;
    for (int64_t i = 0; i < k.D / 2; ++i) inv_freq.push_back(rope_inv_freq(k.rope, i, k.D));
    const double scale = k.rope.attention_factor;
    // Non-contiguous positions up to 50000, with both ends present.
    VecI pos(static_cast<size_t>(k.N));
    for (int32_t& p : pos) p = integer(0, 50000);
    pos[0] = 50000;
    pos[1] = 0;
    const Shape xs{k.N, k.H, k.D};
    const std::string tag = "rope " + str(xs) + " theta=" + std::to_string(static_cast<int>(k.rope.theta)) +
                            " type=" + std::to_string(static_cast<int>(k.rope.type));
    const VecF x = uniform(numel(xs), -1, 1), dy = uniform(numel(xs), -1, 1);
    Tensor tx = tensor(x, xs), tp = tensor(pos, {k.N}), tdy = tensor(dy, xs);
    be_.rope_forward(tx, tp, k.rope);
    expect_close(tag + " y", read(tx), ref_rope(x, pos, k.N, k.H, k.D, inv_freq, scale, 1),
                 ref_rope(as<double>(x), pos, k.N, k.H, k.D, inv_freq, scale, 1));
    be_.rope_backward(tdy, tp, k.rope);
    const VecD fd = fd_grad(
        [&](const VecL& xx) {
          return dot(ref_rope(xx, pos, k.N, k.H, k.D, inv_freq, scale, 1), as<long double>(dy));
        },
        x);
    expect_grad(tag + " dx (FD)", read(tdy), ref_rope(dy, pos, k.N, k.H, k.D, inv_freq, scale, -1),
                ref_rope(as<double>(dy), pos, k.N, k.H, k.D, inv_freq, scale, -1), fd);
  }
}

// ---------------------------------------------------------------- SwiGLU
template <class T>
Vec<T> ref_swiglu(const Vec<T>& g, const Vec<T>& u) {
  Vec<T> out(g.size());
  for (size_t i = 0; i < g.size(); ++i) out[i] = g[i] / (1 + std::exp(-g[i])) * u[i];
  return out;
}

template <class T>
void ref_swiglu_bwd(const Vec<T>& d, const Vec<T>& g, const Vec<T>& u, Vec<T>& dg, Vec<T>& du) {
  dg.resize(g.size());
  du.resize(g.size());
  for (size_t i = 0; i < g.size(); ++i) {
    const T s = 1 / (1 + std::exp(-g[i]));
    dg[i] = d[i] * u[i] * s * (1 + g[i] * (1 - s));
    du[i] = d[i] * g[i] * s;
  }
}

TEST_P(OpsTest, SwigluForwardBackward) {
  const Shape xs{7, 33};
  for (bool alias : {false, true}) {
    VecF g = uniform(numel(xs), -8, 8);
    const VecF u = uniform(numel(xs), -2, 2), d = uniform(numel(xs), -1, 1);
    g[0] = -100.f;  // exp overflow side
    g[1] = 100.f;
    g[2] = -30.f;
    g[3] = 0.f;
    Tensor tg = tensor(g, xs), tu = tensor(u, xs), to = be_.alloc(xs);
    be_.swiglu_forward(tg, tu, to);
    const VecD gd = as<double>(g), ud = as<double>(u), dd = as<double>(d);
    if (!alias) expect_close("swiglu " + str(xs) + " out", read(to), ref_swiglu(g, u), ref_swiglu(gd, ud));

    Tensor tdg = alias ? tg : be_.alloc(xs), tdu = alias ? tu : be_.alloc(xs);
    be_.swiglu_backward(tensor(d, xs), tg, tu, tdg, tdu);
    VecF dgf, duf;
    VecD dgd, dud;
    ref_swiglu_bwd(d, g, u, dgf, duf);
    ref_swiglu_bwd(dd, gd, ud, dgd, dud);
    const VecL gl = as<long double>(g), ul = as<long double>(u), dl = as<long double>(d);
    const VecD fdg = fd_grad([&](const VecL& gg) { return dot(ref_swiglu(gg, ul), dl); }, g);
    const VecD fdu = fd_grad([&](const VecL& uu) { return dot(ref_swiglu(gl, uu), dl); }, u);
    const std::string tag = std::string("swiglu ") + (alias ? "in place " : "") + "(FD)";
    expect_grad(tag + " dgate", read(tdg), dgf, dgd, fdg);
    expect_grad(tag + " dup", read(tdu), duf, dud, fdu);
  }
}

// ---------------------------------------------------------------- embedding
template <class T>
Vec<T> ref_embedding(const VecI& tok, const Vec<T>& table, int64_t C) {
  Vec<T> out(tok.size() * static_cast<size_t>(C));
  for (size_t i = 0; i < tok.size(); ++i)
    for (int64_t c = 0; c < C; ++c) out[i * C + c] = table[tok[i] * C + c];
  return out;
}

template <class T>
void ref_embedding_bwd(const VecI& tok, const Vec<T>& dout, int64_t C, Vec<T>& dtable) {
  for (size_t i = 0; i < tok.size(); ++i)
    for (int64_t c = 0; c < C; ++c) dtable[tok[i] * C + c] += dout[i * C + c];
}

TEST_P(OpsTest, EmbeddingForwardBackward) {
  const int64_t V = 259, C = 33, N = 40;
  VecI tok(N);
  const int32_t few[] = {0, static_cast<int32_t>(V - 1), integer(1, V - 2), integer(1, V - 2), integer(1, V - 2)};
  for (int32_t& t : tok) t = few[integer(0, 4)];  // many repeats
  tok[0] = 0;
  tok[1] = static_cast<int32_t>(V - 1);
  tok[2] = tok[3] = tok[4] = few[2];
  const VecF table = uniform(V * C, -1, 1), dout = uniform(N * C, -1, 1), dtable0 = uniform(V * C, -1, 1);
  Tensor tt = tensor(tok, {N}), out = be_.alloc({N, C});
  be_.embedding_forward(tt, tensor(table, {V, C}), out);
  expect_close("embedding (V=259,C=33) out", read(out), ref_embedding(tok, table, C),
               ref_embedding(tok, as<double>(table), C));

  Tensor tdt = tensor(dtable0, {V, C});
  be_.embedding_backward(tt, tensor(dout, {N, C}), tdt);
  VecF dtf = dtable0;
  VecD dtd = as<double>(dtable0);
  ref_embedding_bwd(tok, dout, C, dtf);
  ref_embedding_bwd(tok, as<double>(dout), C, dtd);
  const VecL doutl = as<long double>(dout);
  const VecD fd = fd_grad([&](const VecL& tb) { return dot(ref_embedding(tok, tb, C), doutl); }, table);
  expect_grad("embedding dtable+= (FD)", read(tdt), dtf, dtd, plus(as<double>(dtable0), fd));
}

// ---------------------------------------------------------------- cross-entropy
template <class T>
void ref_ce(const Vec<T>& z, const VecI& lab, int64_t N, int64_t V, Vec<T>& loss, Vec<T>& lse) {
  loss.assign(static_cast<size_t>(N), 0);
  lse.assign(static_cast<size_t>(N), 0);
  for (int64_t n = 0; n < N; ++n) {
    const T* zn = z.data() + n * V;
    T m = zn[0];
    for (int64_t j = 1; j < V; ++j) m = std::max(m, zn[j]);
    T s = 0;
    for (int64_t j = 0; j < V; ++j) s += std::exp(zn[j] - m);
    lse[n] = m + std::log(s);
    loss[n] = lab[n] >= 0 ? lse[n] - zn[lab[n]] : 0;
  }
}

template <class T>
Vec<T> ref_ce_bwd(const Vec<T>& z, const VecI& lab, const Vec<T>& lse, int64_t N, int64_t V, T scale) {
  Vec<T> dz(z.size(), 0);
  for (int64_t n = 0; n < N; ++n) {
    if (lab[n] < 0) continue;
    for (int64_t j = 0; j < V; ++j) dz[n * V + j] = scale * std::exp(z[n * V + j] - lse[n]);
    dz[n * V + lab[n]] -= scale;
  }
  return dz;
}

TEST_P(OpsTest, CrossEntropyForwardBackward) {
  const int64_t N = 13, V = 259;
  for (bool alias : {false, true}) {
    VecF z = uniform(N * V, -4, 4);
    const VecF big = uniform(2 * V, -50, 50);  // rows 1 and 2: logits ~ +-50
    std::copy(big.begin(), big.end(), z.begin() + V);
    VecI lab(N);
    for (int32_t& l : lab) l = integer(0, V - 1);
    lab[3] = lab[7] = -1;  // ignored
    lab[0] = 0;
    lab[4] = static_cast<int32_t>(V - 1);
    lab[1] = static_cast<int32_t>(std::min_element(big.begin(), big.begin() + V) - big.begin());  // loss ~ 100
    const float scale = 1.f / 11.f;
    Tensor tz = tensor(z, {N, V}), tl = tensor(lab, {N}), tloss = be_.alloc({N}), tlse = be_.alloc({N});
    be_.cross_entropy_forward(tz, tl, tloss, tlse);
    VecF lf, sf;
    VecD ld, sd;
    const VecD zd = as<double>(z);
    ref_ce(z, lab, N, V, lf, sf);
    ref_ce(zd, lab, N, V, ld, sd);
    if (!alias) {
      expect_close("cross_entropy (13,259) losses", read(tloss), lf, ld);
      expect_close("cross_entropy (13,259) lse", read(tlse), sf, sd);
    }
    Tensor tdz = alias ? tz : be_.alloc({N, V});
    be_.cross_entropy_backward(tz, tl, tlse, scale, tdz);
    const VecD fd = fd_grad(
        [&](const VecL& zz) {
          VecL l, s;
          ref_ce(zz, lab, N, V, l, s);
          long double t = 0;
          for (long double x : l) t += x;
          return static_cast<long double>(scale) * t;
        },
        z);
    expect_grad(std::string("cross_entropy dlogits") + (alias ? " in place" : "") + " (FD)", read(tdz),
                ref_ce_bwd(z, lab, sf, N, V, scale), ref_ce_bwd(zd, lab, sd, N, V, static_cast<double>(scale)), fd);
  }
}

// Exact match: hits = 1 where the label is the row's first largest logit; ties go to the first; ignored labels 0.
TEST_P(OpsTest, CrossEntropyHitsAreFirstArgmax) {
  const int64_t N = 37, V = 300;
  VecF z = uniform(N * V, -3, 3);
  VecI lab(N);
  for (int32_t& l : lab) l = integer(0, V - 1);
  for (int64_t n = 0; n < N; n += 3)  // every third row: the label is the argmax
    lab[n] = static_cast<int32_t>(std::max_element(z.begin() + n * V, z.begin() + (n + 1) * V) - (z.begin() + n * V));
  lab[4] = -1;
  z[5 * V + 7] = z[5 * V + 200] = 9.f, lab[5] = 7;  // a tie: the first maximum is the argmax
  z[8 * V + 7] = z[8 * V + 200] = 9.f, lab[8] = 200;
  Tensor tz = tensor(z, {N, V}), tl = tensor(lab, {N}), tloss = be_.alloc({N}), tlse = be_.alloc({N}),
         hits = be_.alloc({N});
  be_.cross_entropy_forward(tz, tl, tloss, tlse, &hits);
  const VecF got = read(hits);
  int64_t ones = 0;
  for (int64_t n = 0; n < N; ++n) {
    const auto row = z.begin() + n * V;
    const bool want = lab[n] >= 0 && std::max_element(row, row + V) - row == lab[n];
    EXPECT_EQ(got[n], want ? 1.f : 0.f) << "row " << n << " label " << lab[n];
    ones += want;
  }
  EXPECT_GE(ones, N / 3) << "the rows whose label is the argmax";
  EXPECT_EQ(got[5], 1.f);
  EXPECT_EQ(got[8], 0.f);
}

// ---------------------------------------------------------------- elementwise and reductions
TEST_P(OpsTest, AddAxpyScale) {
  const Shape xs{7, 11, 13};
  const int64_t n = numel(xs);
  const VecF a = uniform(n, -3, 3), b = uniform(n, -3, 3);
  const float alpha = -0.37f, s = 1.7f;
  VecF f(n);
  VecD d(n);
  Tensor ta = tensor(a, xs), tb = tensor(b, xs), out = be_.alloc(xs);
  be_.add(ta, tb, out);
  for (int64_t i = 0; i < n; ++i) f[i] = a[i] + b[i], d[i] = double(a[i]) + b[i];
  expect_close("add", read(out), f, d);
  be_.add(ta, tb, ta);  // out aliases a
  expect_close("add in place", read(ta), f, d);

  Tensor ty = tensor(b, xs);
  be_.axpy(alpha, tensor(a, xs), ty);
  for (int64_t i = 0; i < n; ++i) f[i] = b[i] + alpha * a[i], d[i] = b[i] + double(alpha) * a[i];
  expect_close("axpy", read(ty), f, d);

  Tensor tx = tensor(a, xs);
  be_.scale(tx, s);
  for (int64_t i = 0; i < n; ++i) f[i] = a[i] * s, d[i] = double(a[i]) * s;
  expect_close("scale", read(tx), f, d);
}

// Column blocks of row-major matrices, overwritten and accumulated, on a view at an offset (Ulysses' head packing):
// the copy is exact, the sum one fp32 addition per element.
TEST_P(OpsTest, CopyColumnsOverwritesAndAccumulates) {
  const int64_t rows = 9, ls = 13, ld = 7, width = 5, src_col = 6, dst_col = 1;
  const VecF a = uniform(rows * ls, -2, 2), b = uniform(2 + rows * ld, -2, 2);
  Tensor src = tensor(a, {rows, ls});
  Tensor whole = tensor(b, {2 + rows * ld});
  Tensor dst = whole.slice(2, {rows, 1, ld});  // not at offset 0, and not 2-D
  be_.copy_columns(src, src_col, dst, dst_col, rows, width);
  VecF want(b.begin() + 2, b.end());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < width; ++j) want[r * ld + dst_col + j] = a[r * ls + src_col + j];
  EXPECT_EQ(read(dst), want) << "copy";
  EXPECT_EQ(read(whole)[0], b[0]) << "elements before the view are untouched";
  be_.copy_columns(src, src_col, dst, dst_col, rows, width, /*add=*/true);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < width; ++j) want[r * ld + dst_col + j] += a[r * ls + src_col + j];
  EXPECT_EQ(read(dst), want) << "accumulate";
}

TEST_P(OpsTest, SumAndSumSquares) {
  for (int64_t n : {int64_t{1}, int64_t{1001}, int64_t{100003}}) {
    const VecF x = uniform(n, -1, 1.5);
    float sf = 0, qf = 0;
    long double sl = 0, ql = 0;
    for (float v : x) sf += v, qf += v * v, sl += v, ql += static_cast<long double>(v) * v;
    Tensor t = tensor(x, {n});
    const std::string tag = " n=" + std::to_string(n);
    expect_close("sum" + tag, VecD{be_.sum(t)}, VecF{sf}, VecD{static_cast<double>(sl)});
    expect_close("sum_squares" + tag, VecD{be_.sum_squares(t)}, VecF{qf}, VecD{static_cast<double>(ql)});
  }
}

// ---------------------------------------------------------------- AdamW
// p = p (1 - lr wd) - lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps), bc = 1 - beta^step, g = grad * grad_scale.
template <class T>
void ref_adamw(Vec<T>& p, const VecF& grad, Vec<T>& m, Vec<T>& v, const AdamWStep& s) {
  const T b1 = s.beta1, b2 = s.beta2, lr = s.lr, wd = s.weight_decay, eps = s.eps;
  const T bc1 = 1 - std::pow(b1, static_cast<T>(s.step)), bc2 = 1 - std::pow(b2, static_cast<T>(s.step));
  for (size_t i = 0; i < p.size(); ++i) {
    const T g = static_cast<T>(grad[i]) * static_cast<T>(s.grad_scale);
    m[i] = b1 * m[i] + (1 - b1) * g;
    v[i] = b2 * v[i] + (1 - b2) * g * g;
    p[i] = p[i] * (1 - lr * wd) - lr / bc1 * m[i] / (std::sqrt(v[i]) / std::sqrt(bc2) + eps);
  }
}

TEST_P(OpsTest, AdamwOneAndSeveralSteps) {
  const int64_t n = 1001;
  struct Case {
    const char* name;
    int64_t first_step, steps;
    bool zero_state;
  };
  for (Case c : {Case{"adamw 1 step (step 1)", 1, 1, true}, Case{"adamw 1 step (step 7, warm state)", 7, 1, false},
                 Case{"adamw 5 steps", 1, 5, true}, Case{"adamw 3 steps from step 1000", 1000, 3, false}}) {
    const VecF p0 = uniform(n, -1, 1);
    const VecF m0 = c.zero_state ? VecF(n) : uniform(n, -0.1, 0.1);
    const VecF v0 = c.zero_state ? VecF(n) : uniform(n, 0, 0.01);
    Tensor tp = tensor(p0, {n}), tm = tensor(m0, {n}), tv = tensor(v0, {n});
    VecF pf = p0, mf = m0, vf = v0;
    VecD pd = as<double>(p0), md = as<double>(m0), vd = as<double>(v0);
    for (int64_t k = 0; k < c.steps; ++k) {
      AdamWStep s;
      s.lr = 1e-2f;
      s.weight_decay = 0.1f;
      s.grad_scale = 0.37f;
      s.step = c.first_step + k;
      VecF g = uniform(n, -1, 1);
      g[0] = 0.f;  // zero gradient on a zero state: v = 0, the eps guard
      be_.adamw_update(tp, tensor(g, {n}), tm, tv, s);
      ref_adamw(pf, g, mf, vf, s);
      ref_adamw(pd, g, md, vd, s);
    }
    expect_close(std::string(c.name) + " param", read(tp), pf, pd);
    expect_close(std::string(c.name) + " m", read(tm), mf, md);
    expect_close(std::string(c.name) + " v", read(tv), vf, vd);
    // The update itself (p - p0) to the same standard: the parameter's own magnitude must not hide it.
    VecF uk = read(tp), uf = pf;
    VecD ud = pd;
    for (int64_t i = 0; i < n; ++i) uk[i] -= p0[i], uf[i] -= p0[i], ud[i] -= p0[i];
    expect_close(std::string(c.name) + " p - p0", uk, uf, ud);
  }
}

std::string device_label(const ::testing::TestParamInfo<Device>& info) {
  return info.param == Device::cuda ? "cuda" : "cpu";
}
INSTANTIATE_TEST_SUITE_P(Backend, OpsTest, ::testing::Values(ops_test_device()), device_label);
INSTANTIATE_TEST_SUITE_P(Backend, GemmTest, ::testing::Values(ops_test_device()), device_label);

}  // namespace
}  // namespace rt
