// Ring attention, Ulysses attention and the 2-D layout (Ulysses inside each ring position) over MPI ranks equal
// attention over the whole sequence on one rank (run at 1-8 ranks).
#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "attention/attention_kernels.h"
#include "parallel/communicator.h"
#include "parallel/ring_attention.h"
#include "parallel/ulysses_attention.h"

namespace rt {
namespace {

struct Problem {
  int64_t S, Hq, Hk, D;
  bool causal;
  Sharding sharding;
  Precision precision = Precision::fp32;  // bf16: K/V travel in bf16, the kernels round their inputs
};

struct Grads {
  std::vector<double> o, lse, dq, dk, dv;
};

// Double-precision attention over the whole sequence and its gradients.
Grads reference(const Problem& pb, const std::vector<float>& q, const std::vector<float>& k, const std::vector<float>& v,
                const std::vector<float>& dout) {
  const int64_t S = pb.S, Hq = pb.Hq, Hk = pb.Hk, D = pb.D, g = Hq / Hk;
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  Grads r;
  r.o.assign(S * Hq * D, 0);
  r.lse.assign(Hq * S, 0);
  r.dq.assign(S * Hq * D, 0);
  r.dk.assign(S * Hk * D, 0);
  r.dv.assign(S * Hk * D, 0);
  std::vector<double> p(S), dp(S);
  for (int64_t h = 0; h < Hq; ++h) {
    const int64_t kh = h / g;
    for (int64_t i = 0; i < S; ++i) {
      const int64_t n = pb.causal ? i + 1 : S;
      double mx = -1e300;
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (int64_t d = 0; d < D; ++d) s += double(q[(i * Hq + h) * D + d]) * k[(j * Hk + kh) * D + d];
        p[j] = s * scale;
        mx = std::max(mx, p[j]);
      }
      double sum = 0;
      for (int64_t j = 0; j < n; ++j) sum += (p[j] = std::exp(p[j] - mx));
      for (int64_t j = 0; j < n; ++j) p[j] /= sum;
      r.lse[h * S + i] = mx + std::log(sum);
      double delta = 0;
      for (int64_t d = 0; d < D; ++d) {
        double acc = 0;
        for (int64_t j = 0; j < n; ++j) acc += p[j] * v[(j * Hk + kh) * D + d];
        r.o[(i * Hq + h) * D + d] = acc;
        delta += acc * dout[(i * Hq + h) * D + d];
      }
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (int64_t d = 0; d < D; ++d) s += double(dout[(i * Hq + h) * D + d]) * v[(j * Hk + kh) * D + d];
        dp[j] = p[j] * (s - delta);
        for (int64_t d = 0; d < D; ++d) {
          r.dv[(j * Hk + kh) * D + d] += p[j] * dout[(i * Hq + h) * D + d];
          r.dq[(i * Hq + h) * D + d] += scale * dp[j] * k[(j * Hk + kh) * D + d];
          r.dk[(j * Hk + kh) * D + d] += scale * dp[j] * q[(i * Hq + h) * D + d];
        }
      }
    }
  }
  return r;
}

// Relative L2 error of `got` against `ref` over the rows (width w) listed by `rows`.
double rel_error(const std::vector<float>& got, const std::vector<double>& ref, const std::vector<int64_t>& rows, int64_t w,
                 bool got_is_local) {
  double num = 0, den = 0;
  for (size_t r = 0; r < rows.size(); ++r)
    for (int64_t c = 0; c < w; ++c) {
      const double x = got[(got_is_local ? static_cast<int64_t>(r) : rows[r]) * w + c], y = ref[rows[r] * w + c];
      num += (x - y) * (x - y);
      den += y * y;
    }
  return std::sqrt(num / std::max(den, 1e-300));
}

// The world as cp ring positions x `ulysses` ranks (Ulysses innermost, as parallel/mesh.h lays them out): the ring
// alone (ulysses 1), Ulysses over local kernels (cp 1), or Ulysses around the ring (2-D).
void check_layout(const Problem& pb, int ulysses) {
  std::unique_ptr<Communicator> world = mpi_world();
  const int n = world->size(), r = world->rank(), cp = n / ulysses, u = r % ulysses, cp_rank = r / ulysses;
  uint64_t seed = std::random_device{}();
  MPI_Bcast(&seed, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
  SCOPED_TRACE("seed " + std::to_string(seed) + " S " + std::to_string(pb.S) + " cp " + std::to_string(cp) +
               " ulysses " + std::to_string(ulysses) + " Hq " + std::to_string(pb.Hq) + " Hk " +
               std::to_string(pb.Hk) + (pb.causal ? " causal" : " full") +
               (pb.sharding == Sharding::zigzag ? " zigzag" : " contiguous") + " " + precision_name(pb.precision));
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd;
  const int64_t S = pb.S, Hq = pb.Hq, Hk = pb.Hk, D = pb.D;
  auto randn = [&](int64_t n) { std::vector<float> x(n); for (float& e : x) e = nd(rng); return x; };
  std::vector<float> q = randn(S * Hq * D), k = randn(S * Hk * D), v = randn(S * Hk * D), dout = randn(S * Hq * D);
  const Grads ref = reference(pb, q, k, v, dout);

  // One rank, whole sequence, flash kernels: the error budget (fp32's, or bf16's with bf16 inputs).
  Backend& be = cpu_backend();
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  const bool bf16 = pb.precision == Precision::bf16;
  AttentionProblem whole{S, S, Hq, Hk, D, pb.causal, 0, 0, scale, bf16};
  std::vector<float> o1(S * Hq * D), lse1(Hq * S), delta1(Hq * S), dq1(S * Hq * D, 0), dk1(S * Hk * D, 0), dv1(S * Hk * D, 0);
  attention_flash_forward(whole, q.data(), k.data(), v.data(), o1.data(), lse1.data());
  attention_delta(whole, o1.data(), dout.data(), delta1.data());
  attention_flash_backward(whole, q.data(), k.data(), v.data(), dout.data(), lse1.data(), delta1.data(), dq1.data(),
                           dk1.data(), dv1.data());

  // The layout: this rank's shard.
  const std::vector<Chunk> chunks = shard_chunks(S, cp, cp_rank, pb.sharding, ulysses, u);
  const int64_t T = S / n;
  std::vector<int64_t> rows;
  for (const Chunk& c : chunks)
    for (int64_t i = 0; i < c.length; ++i) rows.push_back(c.start + i);
  auto local = [&](const std::vector<float>& x, int64_t width, std::vector<int64_t> shape) {
    Tensor t = be.alloc(shape);
    for (size_t i = 0; i < rows.size(); ++i)
      std::copy(x.begin() + rows[i] * width, x.begin() + (rows[i] + 1) * width, t.f32() + i * width);
    return t;
  };
  Tensor ql = local(q, Hq * D, {T, Hq, D}), kl = local(k, Hk * D, {T, Hk, D}), vl = local(v, Hk * D, {T, Hk, D});
  Tensor dol = local(dout, Hq * D, {T, Hq, D});
  Tensor o = be.alloc({T, Hq, D}), lse = be.alloc({Hq, T}), dq = be.alloc({T, Hq, D}), dk = be.alloc({T, Hk, D}),
         dv = be.alloc({T, Hk, D});
  std::unique_ptr<Communicator> ring_group = world->split(u, cp_rank), ulysses_group = world->split(cp_rank, u);
  std::unique_ptr<SequenceAttention> attention =
      layout_attention_make(*ring_group, *ulysses_group, be, S, pb.sharding, pb.causal, pb.precision);
  attention->forward(ql, kl, vl, Tensor{}, o, lse);
  attention->backward(ql, kl, vl, Tensor{}, o, lse, dol, dq, dk, dv);
  if (auto* ring = dynamic_cast<RingAttention*>(attention.get())) {
    // Sent to the neighbour: K|V blocks at cp - 1 steps of the forward and of the backward, dK|dV (fp32) at every step.
    const int64_t kv = 2 * T * Hk * D * (bf16 ? 2 : 4), grads = 2 * T * Hk * D * 4;
    EXPECT_EQ(ring->stats().bytes_sent, 2 * (cp - 1) * kv + cp * grads);
  }

  auto vec = [](const Tensor& t) { return std::vector<float>(t.f32(), t.f32() + t.numel()); };
  // lse is (H, T): compare per head row by transposing into (T, H).
  auto transpose = [](const std::vector<float>& x, int64_t H, int64_t n) {
    std::vector<float> y(x.size());
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < n; ++i) y[i * H + h] = x[h * n + i];
    return y;
  };
  auto transpose_d = [](const std::vector<double>& x, int64_t H, int64_t n) {
    std::vector<double> y(x.size());
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < n; ++i) y[i * H + h] = x[h * n + i];
    return y;
  };
  struct Check {
    const char* name;
    double ring, one_rank;
  };
  const std::vector<double> lse_ref = transpose_d(ref.lse, Hq, S);
  std::vector<Check> checks = {
      {"o", rel_error(vec(o), ref.o, rows, Hq * D, true), rel_error(o1, ref.o, rows, Hq * D, false)},
      {"lse", rel_error(transpose(vec(lse), Hq, T), lse_ref, rows, Hq, true),
       rel_error(transpose(lse1, Hq, S), lse_ref, rows, Hq, false)},
      {"dq", rel_error(vec(dq), ref.dq, rows, Hq * D, true), rel_error(dq1, ref.dq, rows, Hq * D, false)},
      {"dk", rel_error(vec(dk), ref.dk, rows, Hk * D, true), rel_error(dk1, ref.dk, rows, Hk * D, false)},
      {"dv", rel_error(vec(dv), ref.dv, rows, Hk * D, true), rel_error(dv1, ref.dv, rows, Hk * D, false)},
  };
  for (const Check& c : checks) {
    // Budget: twice the single-rank error on the same rows (the merge adds a few roundings per step), floor 1e-6.
    if (bf16) {
      EXPECT_GT(c.one_rank, 1e-4) << c.name << ": the bf16 one-rank run is as exact as fp32";
    }
    EXPECT_LE(c.ring, 2 * c.one_rank + 1e-6) << c.name << " on rank " << r << ": layout " << c.ring << " one rank " << c.one_rank;
  }
}

void check_ring(const Problem& pb) { check_layout(pb, 1); }

// Every layout of this world with ulysses > 1 whose heads split (ulysses_heads_problem): Ulysses alone and 2-D.
// Causal only: Ulysses alone runs the local kernels, which are (SequenceAttention).
void check_ulysses_layouts(const Problem& pb) {
  int n = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  for (int ulysses = 2; ulysses <= n; ++ulysses)
    if (n % ulysses == 0 && ulysses_heads_problem(pb.Hq, pb.Hk, ulysses).empty()) check_layout(pb, ulysses);
}

// Sequence lengths are multiples of 48 = lcm(2*cp) for cp in 1, 2, 3, 4, 8, times an odd factor so chunks
// are odd-sized.
TEST(RingAttention, CausalZigzag) { check_ring({48 * 3, 4, 4, 16, true, Sharding::zigzag}); }
TEST(RingAttention, CausalContiguous) { check_ring({48 * 3, 4, 4, 16, true, Sharding::contiguous}); }
TEST(RingAttention, FullZigzag) { check_ring({48 * 1, 2, 2, 32, false, Sharding::zigzag}); }
TEST(RingAttention, FullContiguous) { check_ring({48 * 1, 2, 2, 32, false, Sharding::contiguous}); }
TEST(RingAttention, GroupedQueryCausalZigzag) { check_ring({48 * 3, 4, 2, 16, true, Sharding::zigzag}); }
TEST(RingAttention, MultiQueryCausalContiguous) { check_ring({48 * 1, 3, 1, 8, true, Sharding::contiguous}); }
// bf16: the K/V blocks travel in bf16 and every rank's kernels round as the one-rank bf16 run's do.
TEST(RingAttention, CausalZigzagBf16) { check_ring({48 * 3, 4, 4, 16, true, Sharding::zigzag, Precision::bf16}); }
TEST(RingAttention, GroupedQueryCausalZigzagBf16) {
  check_ring({48 * 3, 4, 2, 32, true, Sharding::zigzag, Precision::bf16});
}

// Ulysses and 2-D at every (cp, ulysses) of the world: 24 query heads divide by 2, 3, 4, 8. MHA splits the K/V heads;
// GQA with 2 K/V heads splits them at ulysses 2 and repeats each at 4 and 8 (dK/dV of the copies summed); 6 K/V heads
// split at 2 and 3; MQA repeats its one head on every rank.
TEST(UlyssesAttention, MultiHeadCausalZigzag) { check_ulysses_layouts({48 * 3, 24, 24, 16, true, Sharding::zigzag}); }
TEST(UlyssesAttention, GroupedQueryRepeatedHeads) { check_ulysses_layouts({48 * 3, 24, 2, 24, true, Sharding::zigzag}); }
TEST(UlyssesAttention, GroupedQuerySplitHeadsContiguous) {
  check_ulysses_layouts({48 * 1, 24, 6, 8, true, Sharding::contiguous});
}
TEST(UlyssesAttention, MultiQueryCausalZigzag) { check_ulysses_layouts({48 * 1, 24, 1, 16, true, Sharding::zigzag}); }
TEST(UlyssesAttention, GroupedQueryCausalZigzagBf16) {
  check_ulysses_layouts({48 * 3, 24, 2, 16, true, Sharding::zigzag, Precision::bf16});
}

// Which head counts a Ulysses group can share, and the sentence for those it cannot.
TEST(UlyssesHeads, SplitRepeatOrRefuse) {
  const UlyssesHeads split = ulysses_heads(24, 6, 3);
  EXPECT_EQ(split.q, 8);
  EXPECT_EQ(split.kv, 2);
  EXPECT_EQ(split.copies, 1);
  EXPECT_EQ(split.kv_first(2, 3, 6), 4);
  const UlyssesHeads repeated = ulysses_heads(8, 2, 8);
  EXPECT_EQ(repeated.q, 1);
  EXPECT_EQ(repeated.kv, 1);
  EXPECT_EQ(repeated.copies, 4);
  EXPECT_EQ(repeated.kv_first(3, 8, 2), 0);
  EXPECT_EQ(repeated.kv_first(4, 8, 2), 1);
  EXPECT_NE(ulysses_heads_problem(8, 8, 3).find("does not divide model.num_attention_heads = 8"), std::string::npos);
  EXPECT_NE(ulysses_heads_problem(12, 4, 3).find("must divide the K/V heads"), std::string::npos);
  EXPECT_EQ(ulysses_heads_problem(12, 4, 2), "");
}

// The 2-D shards tile the sequence: every position on exactly one rank, each rank seq_len / (cp * ulysses) of them,
// and a ring position's Ulysses ranks hold its rows in order.
TEST(UlyssesSharding, ShardsTileTheSequence) {
  for (Sharding sharding : {Sharding::zigzag, Sharding::contiguous})
    for (int cp : {1, 2, 3})
      for (int ulysses : {1, 2, 4}) {
        const int64_t S = sharded_length(37, cp, sharding, ulysses);
        EXPECT_EQ(S % shard_pieces(cp, sharding, ulysses), 0);
        EXPECT_GE(S, 37);
        std::vector<int> seen(static_cast<size_t>(S), 0);
        for (int c = 0; c < cp; ++c) {
          std::vector<int64_t> ring_rows, joined;
          for (const Chunk& ch : shard_chunks(S, cp, c, sharding))
            for (int64_t i = 0; i < ch.length; ++i) ring_rows.push_back(ch.start + i);
          for (int u = 0; u < ulysses; ++u) {
            int64_t count = 0;
            for (const Chunk& ch : shard_chunks(S, cp, c, sharding, ulysses, u))
              for (int64_t i = 0; i < ch.length; ++i, ++count) {
                ++seen[static_cast<size_t>(ch.start + i)];
                joined.push_back(ch.start + i);
              }
            EXPECT_EQ(count, S / (cp * ulysses));
          }
          EXPECT_EQ(joined, ring_rows) << "cp " << cp << " ulysses " << ulysses;
        }
        for (int x : seen) ASSERT_EQ(x, 1);
      }
}

}  // namespace
}  // namespace rt
