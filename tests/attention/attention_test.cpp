// Tests of the attention kernels and the local SequenceAttention against a double-precision naive attention.
//
// Method (DESIGN.md "Conventions"): naive attention is written once, templated on the element type T.
// T = double is the reference (forward and its analytic backward, itself checked against long-double finite
// differences); T = float is the "naive fp32" attention whose error against the reference sets the tolerance:
// err(kernel) <= 2 * err(naive) + kFloor, err(x) = ||x - ref||_2 / ||ref||_2. Each check prints one
// "[  error   ]" line with the kernel error, the naive error and their ratio. Every test draws a fresh seed
// (printed in the failure trace); RT_TEST_SEED=<seed> replays it.
//
// Why normwise and not max|x - ref| / max|ref| (as tests/core/ops_test.cpp uses): in attention the max-norm
// error is set by a handful of entries whose exact value cancels, e.g. dq of a row that sees one key is exactly
// 0 (P = 1, dP = delta) and carries ~eps * |dP| * scale * |k| of rounding in any implementation that sums dP
// and delta = rowsum(dO * O) in different orders, as the kernel (and flash-attention) do, while the naive loop
// happens to cancel exactly. There, the ratio of two single-entry errors exceeded 2 on about 1% of seeds per
// check (200-seed runs). With the normwise error no check used more than ~55% of its tolerance over 150 seeds,
// and one wrong row still shows: its share of ||ref|| is ~1/sqrt(rows * heads), far above the tolerance.
#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "attention/attention_kernels.h"
#include "attention/cpu/flash_options.h"
#include "attention/sequence_attention.h"
#include "core/backend.h"
#include "tests/attention/attention_tolerance.h"
#include "tests/attention/naive_rounded.h"

namespace rt {
namespace {

// ---------------------------------------------------------------- naive attention in T
// q (Tq,Hq,D), k, v (Tk,Hk,D) -> o (Tq,Hq,D), lse (Hq,Tq); rows that see no key: o = 0, lse = -inf.
bool visible(const AttentionProblem& p, int64_t i, int64_t j) {
  if (p.q_doc_start && p.k_offset + j < p.q_doc_start[i]) return false;  // before the query's document
  return !p.causal || p.k_offset + j <= p.q_offset + i;
}

template <class T>
T score(const AttentionProblem& p, const Vec<T>& q, const Vec<T>& k, int64_t h, int64_t i, int64_t j) {
  const int64_t kv = h / (p.Hq / p.Hk);
  T s = 0;
  for (int64_t d = 0; d < p.D; ++d) s += q[(i * p.Hq + h) * p.D + d] * k[(j * p.Hk + kv) * p.D + d];
  return static_cast<T>(p.scale) * s;
}

template <class T>
void naive_forward(const AttentionProblem& p, const Vec<T>& q, const Vec<T>& k, const Vec<T>& v, Vec<T>& o,
                   Vec<T>& lse) {
  const int64_t group = p.Hq / p.Hk;
  o.assign(static_cast<size_t>(p.Tq * p.Hq * p.D), 0);
  lse.assign(static_cast<size_t>(p.Hq * p.Tq), -std::numeric_limits<T>::infinity());
  Vec<T> s(static_cast<size_t>(p.Tk));
  for (int64_t h = 0; h < p.Hq; ++h)
    for (int64_t i = 0; i < p.Tq; ++i) {
      T m = -std::numeric_limits<T>::infinity();
      for (int64_t j = 0; j < p.Tk; ++j)
        if (visible(p, i, j)) m = std::max(m, s[j] = score(p, q, k, h, i, j));
      if (m == -std::numeric_limits<T>::infinity()) continue;
      T sum = 0;
      for (int64_t j = 0; j < p.Tk; ++j)
        if (visible(p, i, j)) sum += s[j] = std::exp(s[j] - m);
      T* oi = o.data() + (i * p.Hq + h) * p.D;
      for (int64_t j = 0; j < p.Tk; ++j)
        if (visible(p, i, j))
          for (int64_t d = 0; d < p.D; ++d) oi[d] += s[j] / sum * v[(j * p.Hk + h / group) * p.D + d];
      lse[h * p.Tq + i] = m + std::log(sum);
    }
}

// Accumulates: P = exp(S - lse), dV += P^T dO, dP = dO V^T, dS = P (dP - rowsum(dO O)), dQ += scale dS K,
// dK += scale dS^T Q.
template <class T>
void naive_backward(const AttentionProblem& p, const Vec<T>& q, const Vec<T>& k, const Vec<T>& v, const Vec<T>& o,
                    const Vec<T>& dout, const Vec<T>& lse, Vec<T>& dq, Vec<T>& dk, Vec<T>& dv) {
  const int64_t group = p.Hq / p.Hk, D = p.D;
  const T scale = static_cast<T>(p.scale);
  for (int64_t h = 0; h < p.Hq; ++h)
    for (int64_t i = 0; i < p.Tq; ++i) {
      const T l = lse[h * p.Tq + i];
      if (l == -std::numeric_limits<T>::infinity()) continue;
      const T* oi = o.data() + (i * p.Hq + h) * D;
      const T* doi = dout.data() + (i * p.Hq + h) * D;
      const T* qi = q.data() + (i * p.Hq + h) * D;
      T* dqi = dq.data() + (i * p.Hq + h) * D;
      T delta = 0;
      for (int64_t d = 0; d < D; ++d) delta += doi[d] * oi[d];
      for (int64_t j = 0; j < p.Tk; ++j) {
        if (!visible(p, i, j)) continue;
        const int64_t kj = (j * p.Hk + h / group) * D;
        const T pij = std::exp(score(p, q, k, h, i, j) - l);
        T dp = 0;
        for (int64_t d = 0; d < D; ++d) dp += doi[d] * v[kj + d];
        const T ds = pij * (dp - delta);
        for (int64_t d = 0; d < D; ++d) {
          dv[kj + d] += pij * doi[d];
          dqi[d] += scale * ds * k[kj + d];
          dk[kj + d] += scale * ds * qi[d];
        }
      }
    }
}

class AttentionTest : public ::testing::Test {
 protected:
  const uint64_t seed_ = test_seed();
  const ::testing::ScopedTrace trace_{__FILE__, __LINE__,
                                      "seed " + std::to_string(seed_) + " (replay: RT_TEST_SEED=" +
                                          std::to_string(seed_) + ")"};
  std::mt19937_64 gen_{seed_};

  VecF uniform(int64_t n, double lo, double hi) {
    std::uniform_real_distribution<double> d(lo, hi);
    VecF v(static_cast<size_t>(n));
    for (float& x : v) x = static_cast<float>(d(gen_));
    return v;
  }
};

struct Case {
  const char* name;
  int64_t Tq, Tk, Hq, Hk, D;
  bool causal;
  int64_t q_offset, k_offset;
  bool accumulate = false;  // pre-fill dq/dk/dv with random values (the kernel adds to them)
  double range = 1;         // inputs uniform in [-range, range]
  float scale = 0;          // 0: 1/sqrt(D)
  double bias = 0;          // q[...,0] = k[...,0] = bias: every score shifted by ~scale * bias^2
};

AttentionProblem problem_of(const Case& c) {
  AttentionProblem p;
  p.Tq = c.Tq;
  p.Tk = c.Tk;
  p.Hq = c.Hq;
  p.Hk = c.Hk;
  p.D = c.D;
  p.causal = c.causal;
  p.q_offset = c.q_offset;
  p.k_offset = c.k_offset;
  p.scale = c.scale > 0 ? c.scale : 1.0f / std::sqrt(static_cast<float>(c.D));
  return p;
}

// Kernel forward (outputs pre-filled with NaN: every entry must be written) and backward, against the naive
// double reference, with tolerances from the naive float attention.
TEST_F(AttentionTest, ReferenceKernelsMatchNaiveDouble) {
  const Case cases[] = {
      {"noncausal T=37 H=2/2 D=32", 37, 37, 2, 2, 32, false, 0, 0},
      {"causal T=130 GQA 4/2 D=64", 130, 130, 4, 2, 64, true, 0, 0},
      {"causal T=257 GQA 3/1 D=24", 257, 257, 3, 1, 24, true, 0, 0, true},
      {"causal T=129 H=1/1 D=128", 129, 129, 1, 1, 128, true, 0, 0},
      {"causal Tq=37 Tk=53 q@60 k@20 GQA 4/2 D=128", 37, 53, 4, 2, 128, true, 60, 20, true},
      {"causal Tq=40 Tk=50 q@10 k@30 (20 rows see none) D=32", 40, 50, 2, 1, 32, true, 10, 30, true},
      {"causal Tq=150 Tk=60 q@0 k@110 (110 rows none) D=24", 150, 60, 3, 3, 24, true, 0, 110},
      {"fully masked Tq=16 Tk=24 q@0 k@100 D=32", 16, 24, 4, 2, 32, true, 0, 100, true},
      {"noncausal Tq=29 Tk=131 q@500 k@0 D=64", 29, 131, 1, 1, 64, false, 500, 0},
      {"causal Tq=33 Tk=150 q@200 k@0 (all visible) GQA 3/1 D=24", 33, 150, 3, 1, 24, true, 200, 0},
      {"causal Tq=130 Tk=2 GQA 4/1 D=32", 130, 2, 4, 1, 32, true, 0, 0},
      {"causal T=257 GQA 4/2 D=128", 257, 257, 4, 2, 128, true, 0, 0, true},
      {"peaked: causal T=130 D=64 inputs +-2 scale=0.5", 130, 130, 2, 2, 64, true, 0, 0, false, 2.0, 0.5f},
      {"scores ~100 (exp overflows unless max-shifted) T=130 D=64", 130, 130, 2, 1, 64, true, 0, 0, false, 1.0, 1.0f,
       10.0},
  };
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const AttentionProblem p = problem_of(c);
    const int64_t nq = c.Tq * c.Hq * c.D, nk = c.Tk * c.Hk * c.D;
    VecF q = uniform(nq, -c.range, c.range), k = uniform(nk, -c.range, c.range);
    const VecF v = uniform(nk, -1, 1), dout = uniform(nq, -1, 1);
    if (c.bias != 0) {
      for (int64_t i = 0; i < nq; i += c.D) q[i] = static_cast<float>(c.bias);
      for (int64_t i = 0; i < nk; i += c.D) k[i] = static_cast<float>(c.bias);
    }
    const VecD qd = as<double>(q), kd = as<double>(k), vd = as<double>(v), doutd = as<double>(dout);
    const std::string name = c.name;

    VecF o(nq, nan), lse(c.Hq * c.Tq, nan), of, lsef;
    VecD od, lsed;
    attention_reference_forward(p, q.data(), k.data(), v.data(), o.data(), lse.data());
    naive_forward(p, q, k, v, of, lsef);
    naive_forward(p, qd, kd, vd, od, lsed);
    expect_close(name + " o", o, of, od);
    expect_close(name + " lse", lse, lsef, lsed);

    // Gradients: reference = pre-fill + exact gradient; pre-fill scaled like the gradient it is added to.
    VecD gq(nq), gk(nk), gv(nk);
    naive_backward(p, qd, kd, vd, od, doutd, lsed, gq, gk, gv);
    auto prefill = [&](const VecD& g) {
      double mx = 0;
      for (double x : g) mx = std::max(mx, std::abs(x));
      return c.accumulate ? uniform(static_cast<int64_t>(g.size()), -mx - 1e-3, mx + 1e-3) : VecF(g.size());
    };
    const VecF dq0 = prefill(gq), dk0 = prefill(gk), dv0 = prefill(gv);
    VecF dq = dq0, dk = dk0, dv = dv0, dqf = dq0, dkf = dk0, dvf = dv0;
    VecD dqd = as<double>(dq0), dkd = as<double>(dk0), dvd = as<double>(dv0);
    for (size_t i = 0; i < dqd.size(); ++i) dqd[i] += gq[i];
    for (size_t i = 0; i < dkd.size(); ++i) dkd[i] += gk[i], dvd[i] += gv[i];
    attention_reference_backward(p, q.data(), k.data(), v.data(), o.data(), dout.data(), lse.data(), dq.data(),
                                 dk.data(), dv.data());
    naive_backward(p, q, k, v, of, dout, lsef, dqf, dkf, dvf);
    const std::string acc = c.accumulate ? " +=" : "";
    expect_close(name + " dq" + acc, dq, dqf, dqd);
    expect_close(name + " dk" + acc, dk, dkf, dkd);
    expect_close(name + " dv" + acc, dv, dvf, dvd);
  }
}

// The reference's analytic backward against long-double finite differences of its forward (loss = sum(o r)),
// on small problems with GQA, offsets and rows that see no key; the kernel is held to the same truth.
TEST_F(AttentionTest, BackwardMatchesFiniteDifferences) {
  const Case cases[] = {
      {"fd causal Tq=17 Tk=19 q@1 k@6 (5 rows none) GQA 2/1 D=8", 17, 19, 2, 1, 8, true, 1, 6},
      {"fd causal T=16 GQA 3/1 D=6", 16, 16, 3, 1, 6, true, 0, 0},
      {"fd noncausal Tq=9 Tk=21 H=2/2 D=10", 9, 21, 2, 2, 10, false, 0, 0},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const AttentionProblem p = problem_of(c);
    const int64_t nq = c.Tq * c.Hq * c.D, nk = c.Tk * c.Hk * c.D;
    const VecF q = uniform(nq, -1, 1), k = uniform(nk, -1, 1), v = uniform(nk, -1, 1), dout = uniform(nq, -1, 1);
    const VecL ql = as<long double>(q), kl = as<long double>(k), vl = as<long double>(v);
    const VecL dl = as<long double>(dout);
    // loss(which <- x) = sum(o * dout) with input `which` (0 q, 1 k, 2 v) replaced by x
    auto loss = [&](int which, const VecL& x) {
      VecL o, lse;
      naive_forward(p, which == 0 ? x : ql, which == 1 ? x : kl, which == 2 ? x : vl, o, lse);
      long double s = 0;
      for (size_t i = 0; i < o.size(); ++i) s += o[i] * dl[i];
      return s;
    };
    auto fd = [&](int which, const VecF& x0) {
      VecL x = as<long double>(x0);
      VecD g(x.size());
      for (size_t i = 0; i < x.size(); ++i) {
        const long double xi = x[i], h = 1e-6L * std::max(1.0L, std::abs(xi)), xp = xi + h, xm = xi - h;
        x[i] = xp;
        const long double fp = loss(which, x);
        x[i] = xm;
        const long double fm = loss(which, x);
        x[i] = xi;
        g[i] = static_cast<double>((fp - fm) / (xp - xm));
      }
      return g;
    };
    const VecD fq = fd(0, q), fk = fd(1, k), fv = fd(2, v);

    VecD od, lsed, dqd(nq), dkd(nk), dvd(nk);
    naive_forward(p, as<double>(q), as<double>(k), as<double>(v), od, lsed);
    naive_backward(p, as<double>(q), as<double>(k), as<double>(v), od, as<double>(dout), lsed, dqd, dkd, dvd);
    EXPECT_LE(rel_err_l2(dqd, fq), 1e-9) << "the test's double dq disagrees with finite differences";
    EXPECT_LE(rel_err_l2(dkd, fk), 1e-9) << "the test's double dk disagrees with finite differences";
    EXPECT_LE(rel_err_l2(dvd, fv), 1e-9) << "the test's double dv disagrees with finite differences";

    VecF o(nq), lse(c.Hq * c.Tq), of, lsef, dq(nq), dk(nk), dv(nk), dqf(nq), dkf(nk), dvf(nk);
    attention_reference_forward(p, q.data(), k.data(), v.data(), o.data(), lse.data());
    attention_reference_backward(p, q.data(), k.data(), v.data(), o.data(), dout.data(), lse.data(), dq.data(),
                                 dk.data(), dv.data());
    naive_forward(p, q, k, v, of, lsef);
    naive_backward(p, q, k, v, of, dout, lsef, dqf, dkf, dvf);
    const std::string name = c.name;
    expect_close(name + " dq", dq, dqf, fq);
    expect_close(name + " dk", dk, dkf, fk);
    expect_close(name + " dv", dv, dvf, fv);
  }
}

// Local SequenceAttention = the flash kernels with the causal mask at offsets 0; its backward overwrites.
TEST_F(AttentionTest, LocalSequenceAttentionIsCausalKernelAtOffsetZero) {
  Backend& be = cpu_backend();
  auto attn = local_attention_make(be);
  for (const Case& c : {Case{"local T=131 GQA 4/2 D=32", 131, 131, 4, 2, 32, true, 0, 0},
                        Case{"local T=64 GQA 3/1 D=24", 64, 64, 3, 1, 24, true, 0, 0}}) {
    SCOPED_TRACE(c.name);
    const AttentionProblem p = problem_of(c);
    const int64_t T = c.Tq, nq = T * c.Hq * c.D, nk = T * c.Hk * c.D;
    const VecF q = uniform(nq, -1, 1), k = uniform(nk, -1, 1), v = uniform(nk, -1, 1), dout = uniform(nq, -1, 1);
    auto tensor = [&](const VecF& x, std::vector<int64_t> shape) {
      Tensor t = be.alloc(std::move(shape));
      be.upload(x.data(), t);
      return t;
    };
    auto read = [&](const Tensor& t) {
      VecF x(static_cast<size_t>(t.numel()));
      be.download(t, x.data());
      return x;
    };
    Tensor tq = tensor(q, {T, c.Hq, c.D}), tk = tensor(k, {T, c.Hk, c.D}), tv = tensor(v, {T, c.Hk, c.D});
    Tensor to = tensor(uniform(nq, -9, 9), {T, c.Hq, c.D}), tlse = tensor(uniform(c.Hq * T, -9, 9), {c.Hq, T});
    attn->forward(tq, tk, tv, Tensor{}, to, tlse);

    VecF o(nq), lse(c.Hq * T), dq(nq), dk(nk), dv(nk);
    VecF delta(c.Hq * T);
    attention_flash_forward(p, q.data(), k.data(), v.data(), o.data(), lse.data());
    attention_delta(p, o.data(), dout.data(), delta.data());
    attention_flash_backward(p, q.data(), k.data(), v.data(), dout.data(), lse.data(), delta.data(), dq.data(),
                             dk.data(), dv.data());
    EXPECT_EQ(read(to), o);
    EXPECT_EQ(read(tlse), lse);

    // Garbage in the gradient buffers must be overwritten, not accumulated into.
    Tensor tdq = tensor(uniform(nq, -9, 9), {T, c.Hq, c.D}), tdk = tensor(uniform(nk, -9, 9), {T, c.Hk, c.D});
    Tensor tdv = tensor(uniform(nk, -9, 9), {T, c.Hk, c.D});
    attn->backward(tq, tk, tv, Tensor{}, to, tlse, tensor(dout, {T, c.Hq, c.D}), tdq, tdk, tdv);
    EXPECT_EQ(read(tdq), dq);
    EXPECT_EQ(read(tdk), dk);
    EXPECT_EQ(read(tdv), dv);

    // And both against the naive reference, to the usual standard.
    VecF of, lsef, dqf(nq), dkf(nk), dvf(nk);
    VecD od, lsed, dqd(nq), dkd(nk), dvd(nk);
    naive_forward(p, q, k, v, of, lsef);
    naive_backward(p, q, k, v, of, dout, lsef, dqf, dkf, dvf);
    naive_forward(p, as<double>(q), as<double>(k), as<double>(v), od, lsed);
    naive_backward(p, as<double>(q), as<double>(k), as<double>(v), od, as<double>(dout), lsed, dqd, dkd, dvd);
    const std::string name = c.name;
    expect_close(name + " o", read(to), of, od);
    expect_close(name + " lse", read(tlse), lsef, lsed);
    expect_close(name + " dq", read(tdq), dqf, dqd);
    expect_close(name + " dk", read(tdk), dkf, dkd);
    expect_close(name + " dv", read(tdv), dvf, dvd);
  }
}


// ---------------------------------------------------------------- flash attention
// The flash kernels on fresh inputs, against the double reference with the naive-fp32 tolerance, for every tile
// GEMM (AVX-512 microkernels, portable loops, oneDNN) and tilings that put tile edges, diagonal-crossing tiles and
// tile remainders everywhere: 64x64 (the default), 16x16 (many masked tiles) and 24x48 (24 rows: row-block
// remainders of the microkernels; 48 keys: a 3-vector panel). Outputs are pre-filled with NaN (every entry must be
// written); gradients accumulate (+=) into random pre-fills where the case says so. The flash results must also
// agree with the reference kernel (attention_reference_*) within the same tolerance.
struct FlashVariant {
  const char* name;
  FlashOptions opt;
};

const FlashVariant kFlashVariants[] = {
    {"auto 64x64", {FlashGemm::kAuto, 0, 0}},
    {"avx512 16x16", {FlashGemm::kAvx512, 16, 16}},
    {"avx512 24x48", {FlashGemm::kAvx512, 24, 48}},
    {"portable 64x64", {FlashGemm::kPortable, 0, 0}},
    {"portable 24x48", {FlashGemm::kPortable, 24, 48}},
    {"onednn 16x32", {FlashGemm::kOneDnn, 16, 32}},
};

// Forward, delta and backward with the options; o and lse written, dq, dk, dv accumulated into.
void flash_forward_backward(const FlashOptions& opt, const AttentionProblem& p, const VecF& q, const VecF& k,
                            const VecF& v, const VecF& dout, VecF& o, VecF& lse, VecF& dq, VecF& dk, VecF& dv) {
  VecF delta(lse.size());
  attention_flash_forward_with(opt, p, q.data(), k.data(), v.data(), o.data(), lse.data());
  attention_delta(p, o.data(), dout.data(), delta.data());
  attention_flash_backward_with(opt, p, q.data(), k.data(), v.data(), dout.data(), lse.data(), delta.data(), dq.data(),
                                dk.data(), dv.data());
}

// err(kernel vs other kernel) <= 2 * naive fp32 error + kFloor.
void expect_agree(const std::string& what, const VecF& kernel, const VecF& other, const VecF& naive, const VecD& ref) {
  const double ek = rel_err_l2(kernel, as<double>(other)), en = rel_err_l2(naive, ref);
  EXPECT_LE(ek, 2 * en + kFloor) << what << ": flash vs reference kernel " << ek << " vs naive fp32 error " << en;
}

TEST_F(AttentionTest, FlashKernelsMatchNaiveDouble) {
  std::printf("[  info    ] AVX-512 microkernels compiled: %s\n", flash_avx512_compiled() ? "yes" : "no");
  const Case cases[] = {
      {"noncausal T=37 H=2/2 D=32", 37, 37, 2, 2, 32, false, 0, 0},
      {"causal T=130 GQA 4/2 D=64", 130, 130, 4, 2, 64, true, 0, 0},
      {"causal T=203 GQA 3/1 D=32", 203, 203, 3, 1, 32, true, 0, 0, true},
      {"causal T=129 H=1/1 D=128", 129, 129, 1, 1, 128, true, 0, 0},
      {"causal T=200 GQA 4/2 D=128", 200, 200, 4, 2, 128, true, 0, 0, true},
      {"causal Tq=37 Tk=53 q@60 k@20 GQA 4/2 D=128", 37, 53, 4, 2, 128, true, 60, 20, true},
      {"causal Tq=40 Tk=50 q@10 k@30 (20 rows see none) D=32", 40, 50, 2, 1, 32, true, 10, 30, true},
      {"causal Tq=150 Tk=60 q@0 k@110 (110 rows none) D=64", 150, 60, 3, 3, 64, true, 0, 110},
      {"causal Tq=90 Tk=170 q@40 k@0 (keys past 130 unseen) D=64", 90, 170, 2, 2, 64, true, 40, 0, true},
      {"fully masked Tq=16 Tk=24 q@0 k@100 D=32", 16, 24, 4, 2, 32, true, 0, 100, true},
      {"no keys Tq=9 Tk=0 D=32", 9, 0, 2, 1, 32, true, 0, 0},
      {"noncausal Tq=29 Tk=131 q@500 k@0 D=64", 29, 131, 1, 1, 64, false, 500, 0},
      {"causal Tq=33 Tk=150 q@200 k@0 (all visible) GQA 3/1 D=32", 33, 150, 3, 1, 32, true, 200, 0},
      {"causal Tq=130 Tk=2 GQA 4/1 D=32", 130, 2, 4, 1, 32, true, 0, 0},
      {"causal T=77 GQA 2/1 D=24 (D not a multiple of 16)", 77, 77, 2, 1, 24, true, 0, 0, true},
      {"causal Tq=70 Tk=90 q@30 k@0 D=40", 70, 90, 2, 2, 40, true, 30, 0},
      {"peaked: causal T=130 D=64 inputs +-2 scale=0.5", 130, 130, 2, 2, 64, true, 0, 0, false, 2.0, 0.5f},
      {"scores ~100 (exp overflows unless max-shifted) T=130 D=64", 130, 130, 2, 1, 64, true, 0, 0, false, 1.0, 1.0f,
       10.0},
  };
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const AttentionProblem p = problem_of(c);
    const int64_t nq = c.Tq * c.Hq * c.D, nk = c.Tk * c.Hk * c.D;
    VecF q = uniform(nq, -c.range, c.range), k = uniform(nk, -c.range, c.range);
    const VecF v = uniform(nk, -1, 1), dout = uniform(nq, -1, 1);
    if (c.bias != 0) {
      for (int64_t i = 0; i < nq; i += c.D) q[i] = static_cast<float>(c.bias);
      for (int64_t i = 0; i < nk; i += c.D) k[i] = static_cast<float>(c.bias);
    }
    const VecD qd = as<double>(q), kd = as<double>(k), vd = as<double>(v), doutd = as<double>(dout);

    // Truth (double), the naive fp32 attention (tolerances) and the reference kernel (agreement).
    VecF of, lsef;
    VecD od, lsed;
    naive_forward(p, q, k, v, of, lsef);
    naive_forward(p, qd, kd, vd, od, lsed);
    VecD gq(nq), gk(nk), gv(nk);
    naive_backward(p, qd, kd, vd, od, doutd, lsed, gq, gk, gv);
    auto prefill = [&](const VecD& g) {
      double mx = 0;
      for (double x : g) mx = std::max(mx, std::abs(x));
      return c.accumulate ? uniform(static_cast<int64_t>(g.size()), -mx - 1e-3, mx + 1e-3) : VecF(g.size());
    };
    const VecF dq0 = prefill(gq), dk0 = prefill(gk), dv0 = prefill(gv);
    VecD dqd = as<double>(dq0), dkd = as<double>(dk0), dvd = as<double>(dv0);
    for (size_t i = 0; i < dqd.size(); ++i) dqd[i] += gq[i];
    for (size_t i = 0; i < dkd.size(); ++i) dkd[i] += gk[i], dvd[i] += gv[i];
    VecF dqf = dq0, dkf = dk0, dvf = dv0;
    naive_backward(p, q, k, v, of, dout, lsef, dqf, dkf, dvf);
    VecF o_ref(nq), lse_ref(c.Hq * c.Tq), dq_ref = dq0, dk_ref = dk0, dv_ref = dv0;
    attention_reference_forward(p, q.data(), k.data(), v.data(), o_ref.data(), lse_ref.data());
    attention_reference_backward(p, q.data(), k.data(), v.data(), o_ref.data(), dout.data(), lse_ref.data(),
                                 dq_ref.data(), dk_ref.data(), dv_ref.data());

    for (const FlashVariant& fv : kFlashVariants) {
      const std::string name = std::string(c.name) + " [" + fv.name + "]";
      SCOPED_TRACE(fv.name);
      VecF o(nq, nan), lse(c.Hq * c.Tq, nan), dq = dq0, dk = dk0, dv = dv0;
      flash_forward_backward(fv.opt, p, q, k, v, dout, o, lse, dq, dk, dv);
      const std::string acc = c.accumulate ? " +=" : "";
      expect_close(name + " o", o, of, od);
      expect_close(name + " lse", lse, lsef, lsed);
      expect_close(name + " dq" + acc, dq, dqf, dqd);
      expect_close(name + " dk" + acc, dk, dkf, dkd);
      expect_close(name + " dv" + acc, dv, dvf, dvd);
      expect_agree(name + " o", o, o_ref, of, od);
      expect_agree(name + " lse", lse, lse_ref, lsef, lsed);
      expect_agree(name + " dq", dq, dq_ref, dqf, dqd);
      expect_agree(name + " dk", dk, dk_ref, dkf, dkd);
      expect_agree(name + " dv", dv, dv_ref, dvf, dvd);
    }
  }
}

// bf16 inputs (AttentionProblem::bf16_inputs, train.precision = bf16): Q, K, V, dO, P and dS rounded to bf16 where
// they enter a tile product. Against the double reference of the exact inputs, with the tolerance of the naive
// attention that rounds at the same places in fp32 (tests/attention/naive_rounded.h, as the CUDA kernels are held);
// and the error must be bf16's, not fp32's, or the kernels did not round. Tilings as above; kBf16 runs vdpbf16ps
// where the CPU has AVX512-BF16 (RINGTRAIN_MAX_CPU_ISA=AVX512_CORE runs the emulation: the ctest *_no_bf16 twin).
TEST_F(AttentionTest, FlashBf16KernelsMatchNaiveBf16) {
  std::printf("[  info    ] bf16 tile products: %s\n", flash_bf16_amx()      ? "AMX tiles"
                                                    : flash_bf16_native() ? "AVX512-BF16 vdpbf16ps"
                                                                          : "emulated (rounded values in fp32)");
  const FlashVariant variants[] = {
      {"bf16 auto", {FlashGemm::kAuto, 0, 0}},
      {"bf16 16x16", {FlashGemm::kBf16, 16, 16}},
      {"bf16 24x48", {FlashGemm::kBf16, 24, 48}},
      {"bf16 128x128", {FlashGemm::kBf16, 128, 128}},
  };
  const Case cases[] = {
      {"noncausal T=37 H=2/2 D=32", 37, 37, 2, 2, 32, false, 0, 0},
      {"causal T=203 GQA 3/1 D=32", 203, 203, 3, 1, 32, true, 0, 0},
      {"causal T=200 GQA 4/2 D=128", 200, 200, 4, 2, 128, true, 0, 0},
      {"causal Tq=37 Tk=53 q@60 k@20 GQA 4/2 D=64", 37, 53, 4, 2, 64, true, 60, 20},
      {"causal Tq=40 Tk=50 q@10 k@30 (20 rows see none) D=32", 40, 50, 2, 1, 32, true, 10, 30},
      {"causal Tq=90 Tk=171 q@40 k@0 (odd key count) D=64", 90, 171, 2, 2, 64, true, 40, 0},
      {"causal T=77 GQA 2/1 D=24 (D not a multiple of 16)", 77, 77, 2, 1, 24, true, 0, 0},
      {"causal Tq=71 Tk=93 q@30 k@0 D=40", 71, 93, 2, 2, 40, true, 30, 0},
  };
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    AttentionProblem p = problem_of(c);
    p.bf16_inputs = true;
    const int64_t nq = c.Tq * c.Hq * c.D, nk = c.Tk * c.Hk * c.D;
    const VecF q = uniform(nq, -1, 1), k = uniform(nk, -1, 1), v = uniform(nk, -1, 1), dout = uniform(nq, -1, 1);
    const Result<double> ref = naive<double>(p, q, k, v, dout, [](float x) { return x; });
    const Result<float> nai = naive<float>(p, q, k, v, dout, bf16);
    const VecF dq0 = uniform(nq, -1, 1), dk0 = uniform(nk, -1, 1), dv0 = uniform(nk, -1, 1);
    for (const FlashVariant& fv : variants) {
      const std::string name = std::string(c.name) + " [" + fv.name + "]";
      SCOPED_TRACE(fv.name);
      VecF o(nq, nan), lse(c.Hq * c.Tq, nan), dq = dq0, dk = dk0, dv = dv0;
      flash_forward_backward(fv.opt, p, q, k, v, dout, o, lse, dq, dk, dv);
      for (size_t i = 0; i < dq.size(); ++i) dq[i] -= dq0[i];
      for (size_t i = 0; i < dk.size(); ++i) dk[i] -= dk0[i], dv[i] -= dv0[i];
      expect_close(name + " o", o, nai.o, ref.o);
      expect_close(name + " lse", lse, nai.lse, ref.lse);
      expect_close(name + " dq+=", dq, nai.dq, ref.dq);
      expect_close(name + " dk+=", dk, nai.dk, ref.dk);
      expect_close(name + " dv+=", dv, nai.dv, ref.dv);
      EXPECT_GT(rel_err_l2(o, ref.o), 8 * FLT_EPSILON) << name << ": o is as exact as fp32: nothing was rounded";
      EXPECT_GT(rel_err_l2(dk, ref.dk), 8 * FLT_EPSILON) << name << ": dk is as exact as fp32";
    }
  }
}

// Document masking (AttentionProblem::q_doc_start, data.document_mask): a query sees only the keys of its own
// document. Documents of irregular lengths (1 token, shorter and longer than a tile, a tile edge exactly) over block
// pairs at the offsets a ring step gives: the diagonal block, an earlier key block whose keys some rows' documents
// start after (those rows see none), a later query block. Every fp32 tiling and the reference kernel against the
// double naive attention (tolerance from the naive fp32 one), the bf16 kernels against the naive bf16 one; with one
// document the mask must change nothing, bit for bit.
TEST_F(AttentionTest, DocumentMaskedKernelsMatchNaive) {
  struct DocCase {
    const char* name;
    int64_t Tq, Tk, Hq, Hk, D, q_offset, k_offset;
    std::vector<int64_t> lengths;  // document lengths from position 0, cycled to cover the block pair
  };
  const DocCase cases[] = {
      {"diagonal T=203 GQA 3/1 D=32 docs 50,1,17,90", 203, 203, 3, 1, 32, 0, 0, {50, 1, 17, 90}},
      {"diagonal T=300 H=2/2 D=64 docs 128 (whole tiles skipped)", 300, 300, 2, 2, 64, 0, 0, {128}},
      {"earlier keys Tq=70 Tk=90 q@130 k@20 GQA 4/2 D=64 docs 40,100", 70, 90, 4, 2, 64, 130, 20, {40, 100}},
      {"later queries Tq=96 Tk=64 q@64 k@0 D=32 docs 7,64,3", 96, 64, 2, 1, 32, 64, 0, {7, 64, 3}},
      {"one document T=150 D=32", 150, 150, 2, 2, 32, 0, 0, {100000}},
  };
  const FlashVariant bf16_variants[] = {{"bf16 auto", {FlashGemm::kBf16, 0, 0}}, {"bf16 16x16", {FlashGemm::kBf16, 16, 16}}};
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (const DocCase& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<int32_t> doc(static_cast<size_t>(c.Tq));  // per query: where its document starts
    for (int64_t i = 0, start = 0, next = 0, d = 0; i < c.Tq; ++i) {
      while (next <= c.q_offset + i) start = next, next += c.lengths[static_cast<size_t>(d++) % c.lengths.size()];
      doc[static_cast<size_t>(i)] = static_cast<int32_t>(start);
    }
    AttentionProblem p{c.Tq, c.Tk, c.Hq, c.Hk, c.D, true, c.q_offset, c.k_offset, 1.0f / std::sqrt(float(c.D))};
    AttentionProblem masked = p;
    masked.q_doc_start = doc.data();
    const int64_t nq = c.Tq * c.Hq * c.D, nk = c.Tk * c.Hk * c.D;
    const VecF q = uniform(nq, -1, 1), k = uniform(nk, -1, 1), v = uniform(nk, -1, 1), dout = uniform(nq, -1, 1);
    VecF of, lsef, dqf(nq), dkf(nk), dvf(nk);
    VecD od, lsed, dqd(nq), dkd(nk), dvd(nk);
    naive_forward(masked, q, k, v, of, lsef);
    naive_backward(masked, q, k, v, of, dout, lsef, dqf, dkf, dvf);
    naive_forward(masked, as<double>(q), as<double>(k), as<double>(v), od, lsed);
    naive_backward(masked, as<double>(q), as<double>(k), as<double>(v), od, as<double>(dout), lsed, dqd, dkd, dvd);
    auto check = [&](const std::string& name, const VecF& o, const VecF& lse, const VecF& dq, const VecF& dk,
                     const VecF& dv) {
      expect_close(name + " o", o, of, od);
      expect_close(name + " lse", lse, lsef, lsed);
      expect_close(name + " dq", dq, dqf, dqd);
      expect_close(name + " dk", dk, dkf, dkd);
      expect_close(name + " dv", dv, dvf, dvd);
    };
    {
      VecF o(nq, nan), lse(c.Hq * c.Tq, nan), dq(nq), dk(nk), dv(nk);
      attention_reference_forward(masked, q.data(), k.data(), v.data(), o.data(), lse.data());
      attention_reference_backward(masked, q.data(), k.data(), v.data(), o.data(), dout.data(), lse.data(), dq.data(),
                                   dk.data(), dv.data());
      check(std::string(c.name) + " [reference]", o, lse, dq, dk, dv);
    }
    for (const FlashVariant& fv : kFlashVariants) {
      SCOPED_TRACE(fv.name);
      VecF o(nq, nan), lse(c.Hq * c.Tq, nan), dq(nq), dk(nk), dv(nk);
      flash_forward_backward(fv.opt, masked, q, k, v, dout, o, lse, dq, dk, dv);
      check(std::string(c.name) + " [" + fv.name + "]", o, lse, dq, dk, dv);
      if (c.lengths[0] >= c.q_offset + c.Tq) {  // one document: exactly the unmasked kernels
        VecF o1(nq), lse1(c.Hq * c.Tq), dq1(nq), dk1(nk), dv1(nk);
        flash_forward_backward(fv.opt, p, q, k, v, dout, o1, lse1, dq1, dk1, dv1);
        EXPECT_EQ(o, o1);
        EXPECT_EQ(dq, dq1);
        EXPECT_EQ(dk, dk1);
      }
    }
    AttentionProblem masked_bf16 = masked;
    masked_bf16.bf16_inputs = true;
    const Result<double> ref = naive<double>(masked_bf16, q, k, v, dout, [](float x) { return x; });
    const Result<float> nai = naive<float>(masked_bf16, q, k, v, dout, bf16);
    for (const FlashVariant& fv : bf16_variants) {
      SCOPED_TRACE(fv.name);
      const std::string name = std::string(c.name) + " [" + fv.name + "]";
      VecF o(nq, nan), lse(c.Hq * c.Tq, nan), dq(nq), dk(nk), dv(nk);
      flash_forward_backward(fv.opt, masked_bf16, q, k, v, dout, o, lse, dq, dk, dv);
      expect_close(name + " o", o, nai.o, ref.o);
      expect_close(name + " lse", lse, nai.lse, ref.lse);
      expect_close(name + " dq", dq, nai.dq, ref.dq);
      expect_close(name + " dk", dk, nai.dk, ref.dk);
      expect_close(name + " dv", dv, nai.dv, ref.dv);
    }
  }
}

// Decode attention (one new token, or a few, against a long cache; split over key blocks of 256 and merged by LSE):
// against the double naive attention, with the naive fp32 one's tolerance; caches shorter than a block, several
// blocks, a causal cut inside a block, a document start inside the cache, and rows that see no key.
TEST_F(AttentionTest, DecodeKernelMatchesNaive) {
  struct DecodeCase {
    const char* name;
    int64_t Tq, Tk, Hq, Hk, D, q_offset;
    int32_t doc_start;  // every query's document start, 0: one document
  };
  const DecodeCase cases[] = {
      {"1 token, 100 cached, MHA D=32", 1, 100, 4, 4, 32, 99, 0},
      {"1 token, 1000 cached (4 blocks), GQA 6/2 D=64", 1, 1000, 6, 2, 64, 999, 0},
      {"3 tokens, causal cut at 700 of 900, MQA D=48", 3, 900, 4, 1, 48, 697, 0},
      {"1 token, document from 600 of 1000, D=64", 1, 1000, 2, 2, 64, 999, 600},
      {"2 tokens, keys after both (none seen)", 2, 50, 2, 1, 32, -10, 0},
  };
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (const DecodeCase& c : cases) {
    SCOPED_TRACE(c.name);
    AttentionProblem p{c.Tq, c.Tk, c.Hq, c.Hk, c.D, true, c.q_offset, 0, 1.0f / std::sqrt(float(c.D))};
    std::vector<int32_t> doc(static_cast<size_t>(c.Tq), c.doc_start);
    if (c.doc_start > 0) p.q_doc_start = doc.data();
    const int64_t nq = c.Tq * c.Hq * c.D, nk = c.Tk * c.Hk * c.D;
    const VecF q = uniform(nq, -1, 1), k = uniform(nk, -1, 1), v = uniform(nk, -1, 1);
    VecF o(nq, nan), lse(c.Hq * c.Tq, nan), of, lsef;
    VecD od, lsed;
    attention_decode(p, q.data(), k.data(), v.data(), o.data(), lse.data());
    naive_forward(p, q, k, v, of, lsef);
    naive_forward(p, as<double>(q), as<double>(k), as<double>(v), od, lsed);
    expect_close(std::string(c.name) + " o", o, of, od);
    expect_close(std::string(c.name) + " lse", lse, lsef, lsed);
  }
}

// delta = rowsum(dout * o) per (head, row), against double.
TEST_F(AttentionTest, FlashDeltaIsRowsumOfDoutTimesO) {
  const Case c{"delta T=45 H=3 D=40", 45, 45, 3, 3, 40, true, 0, 0};
  const AttentionProblem p = problem_of(c);
  const int64_t nq = c.Tq * c.Hq * c.D;
  const VecF o = uniform(nq, -1, 1), dout = uniform(nq, -1, 1);
  VecF delta(c.Hq * c.Tq, std::numeric_limits<float>::quiet_NaN()), naive(delta.size());
  VecD ref(delta.size());
  for (int64_t h = 0; h < c.Hq; ++h)
    for (int64_t i = 0; i < c.Tq; ++i) {
      double s = 0;
      float sf = 0;
      for (int64_t d = 0; d < c.D; ++d) {
        const int64_t e = (i * c.Hq + h) * c.D + d;
        s += static_cast<double>(o[e]) * dout[e];
        sf += o[e] * dout[e];
      }
      ref[h * c.Tq + i] = s;
      naive[h * c.Tq + i] = sf;
    }
  attention_delta(p, o.data(), dout.data(), delta.data());
  expect_close("delta", delta, naive, ref);
}

}  // namespace
}  // namespace rt
