// The NCCL Communicator and ring attention over it on GPUs (run at 1 and 2 ranks): exact collectives, and the ring
// against one GPU's flash attention over the whole sequence. Every test skips, on every rank, with the reason, where
// a rank has no usable GPU (CPU-only build, no GPU visible, fewer GPUs than ranks on a node).
#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "attention/attention_kernels.h"
#include "attention/attention_ops.h"
#include "core/backend.h"
#include "parallel/communicator.h"
#include "parallel/ring_attention.h"
#include "parallel/ulysses_attention.h"
#include "parallel/sharding.h"

namespace rt {
namespace {

// Why this job cannot run the NCCL tests ("" when it can); the same answer on every rank.
std::string why_not_runnable() {
  std::string why = device_unavailable_reason(Device::cuda);
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
  int local_ranks = 1;
  MPI_Comm_size(node, &local_ranks);
  MPI_Comm_free(&node);
  if (why.empty() && local_ranks > device_count(Device::cuda))  // NCCL refuses two ranks on one GPU
    why = std::to_string(local_ranks) + " ranks on this node but " + std::to_string(device_count(Device::cuda)) +
          " visible GPU(s); NCCL needs one GPU per rank";
  int usable = why.empty() ? 1 : 0, all = 0;
  MPI_Allreduce(&usable, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (all) return "";
  return why.empty() ? "another rank has no usable GPU" : why;
}

#define RT_SKIP_UNLESS_NCCL()                             \
  do {                                                    \
    const std::string rt_why_ = why_not_runnable();       \
    if (!rt_why_.empty()) GTEST_SKIP() << rt_why_;        \
  } while (0)

std::vector<float> read(Backend& be, const Tensor& t) {
  std::vector<float> x(static_cast<size_t>(t.numel()));
  be.download(t, x.data());
  return x;
}

TEST(Nccl, CollectivesAndRingExchangeAreExact) {
  RT_SKIP_UNLESS_NCCL();
  std::unique_ptr<Communicator> world = nccl_world(60);
  Backend& gpu = backend_for(Device::cuda);
  const int r = world->rank(), n = world->size();
  // all_reduce_sum: rank r holds r + i at i.
  Tensor t = gpu.alloc({1001});
  std::vector<float> mine(1001);
  for (int i = 0; i < 1001; ++i) mine[i] = static_cast<float>(r + i);
  gpu.upload(mine.data(), t);
  world->all_reduce_sum(t);
  const std::vector<float> sum = read(gpu, t);
  for (int i = 0; i < 1001; ++i) ASSERT_EQ(sum[i], static_cast<float>(n * i + n * (n - 1) / 2)) << i;
  // broadcast from the last rank
  Tensor b = gpu.alloc({7});
  gpu.fill(b, static_cast<float>(r));
  world->broadcast(b, n - 1);
  for (float x : read(gpu, b)) EXPECT_EQ(x, static_cast<float>(n - 1));
  // a ring step: send to r+1, receive from r-1, the handle waited on the compute stream
  Tensor send = gpu.alloc({3, 5}), recv = gpu.alloc({3, 5});
  gpu.fill(send, static_cast<float>(r));
  CommHandle h = world->sendrecv_async(send, (r + 1) % n, recv, (r - 1 + n) % n);
  world->wait(h);
  for (float x : read(gpu, recv)) EXPECT_EQ(x, static_cast<float>((r - 1 + n) % n));
  // all_to_all: block i of rank r's send (value 100 r + i) lands in block r of rank i's receive
  Tensor a2a = gpu.alloc({n, 3}), a2a_recv = gpu.alloc({n, 3});
  std::vector<float> blocks(static_cast<size_t>(3 * n));
  for (int i = 0; i < 3 * n; ++i) blocks[i] = static_cast<float>(100 * r + i / 3);
  gpu.upload(blocks.data(), a2a);
  world->all_to_all(a2a, a2a_recv);
  const std::vector<float> got = read(gpu, a2a_recv);
  for (int i = 0; i < 3 * n; ++i) EXPECT_EQ(got[i], static_cast<float>(100 * (i / 3) + r)) << i;
  // host values still go over MPI; split gives a working sub-communicator
  double v[2] = {1.0, static_cast<double>(r)};
  world->all_reduce_sum(v, 2);
  EXPECT_EQ(v[0], n);
  std::unique_ptr<Communicator> alone = world->split(r, 0);
  EXPECT_EQ(alone->size(), 1);
  alone->all_reduce_sum(t);  // a no-op over one rank
  world->barrier();
}

struct Problem {
  int64_t S, Hq, Hk, D;
  bool causal;
  Sharding sharding;
  Precision precision = Precision::fp32;  // bf16: the K/V blocks travel in bf16 (ncclBfloat16)
};

// err(layout on GPUs) <= 2 err(flash on one GPU) + 1e-6 for o, lse, dq, dk, dv over this rank's rows, both against the
// CPU fp32 flash kernels (whose error, ~1e-7, is far below bf16's ~1e-3). The layout: the ring over the world
// (ulysses 1), or Ulysses groups of `ulysses` ranks around a ring of the rest (local kernels when that is 1).
void check_layout(const Problem& pb, int ulysses) {
  std::unique_ptr<Communicator> world = nccl_world(60);
  Backend& gpu = backend_for(Device::cuda);
  const AttentionOps& cuda_ops = attention_ops_for(Device::cuda);
  const int n = world->size(), r = world->rank(), cp = n / ulysses, u = r % ulysses, cp_rank = r / ulysses;
  uint64_t seed = std::random_device{}();
  MPI_Bcast(&seed, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
  SCOPED_TRACE("seed " + std::to_string(seed) + " S " + std::to_string(pb.S) + " cp " + std::to_string(cp) +
               " ulysses " + std::to_string(ulysses));
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd;
  const int64_t S = pb.S, Hq = pb.Hq, Hk = pb.Hk, D = pb.D, T = S / n;
  auto randn = [&](int64_t n) {
    std::vector<float> x(static_cast<size_t>(n));
    for (float& e : x) e = nd(rng);
    return x;
  };
  const std::vector<float> q = randn(S * Hq * D), k = randn(S * Hk * D), v = randn(S * Hk * D),
                           dout = randn(S * Hq * D);
  const AttentionProblem whole{S, S, Hq, Hk, D, pb.causal, 0, 0, 1.0f / std::sqrt(static_cast<float>(D))};

  // The whole sequence: CPU fp32 (the yardstick) and one GPU.
  struct Out {
    std::vector<float> o, lse, dq, dk, dv;
  };
  Out cpu{std::vector<float>(S * Hq * D), std::vector<float>(Hq * S), std::vector<float>(S * Hq * D),
          std::vector<float>(S * Hk * D), std::vector<float>(S * Hk * D)};
  std::vector<float> delta(Hq * S);
  attention_flash_forward(whole, q.data(), k.data(), v.data(), cpu.o.data(), cpu.lse.data());
  attention_delta(whole, cpu.o.data(), dout.data(), delta.data());
  attention_flash_backward(whole, q.data(), k.data(), v.data(), dout.data(), cpu.lse.data(), delta.data(),
                           cpu.dq.data(), cpu.dk.data(), cpu.dv.data());
  auto up = [&](const std::vector<float>& x, std::vector<int64_t> shape) {
    Tensor t = gpu.alloc(std::move(shape));
    gpu.upload(x.data(), t);
    return t;
  };
  Tensor gq = up(q, {S, Hq, D}), gk = up(k, {S, Hk, D}), gv = up(v, {S, Hk, D}), gdo = up(dout, {S, Hq, D});
  Tensor go = gpu.alloc({S, Hq, D}), gl = gpu.alloc({Hq, S}), gd = gpu.alloc({Hq, S}), gdq = gpu.alloc({S, Hq, D}),
         gdk = gpu.alloc({S, Hk, D}), gdv = gpu.alloc({S, Hk, D});
  cuda_ops.forward(whole, gq.f32(), gk.f32(), gv.f32(), go.f32(), gl.f32());
  cuda_ops.delta(whole, go.f32(), gdo.f32(), gd.f32());
  cuda_ops.backward(whole, gq.f32(), gk.f32(), gv.f32(), gdo.f32(), gl.f32(), gd.f32(), gdq.f32(), gdk.f32(),
                    gdv.f32());
  const Out one{read(gpu, go), read(gpu, gl), read(gpu, gdq), read(gpu, gdk), read(gpu, gdv)};

  // The layout over this rank's shard.
  std::vector<int64_t> rows;
  for (const Chunk& c : shard_chunks(S, cp, cp_rank, pb.sharding, ulysses, u))
    for (int64_t i = 0; i < c.length; ++i) rows.push_back(c.start + i);
  auto local = [&](const std::vector<float>& x, int64_t width, std::vector<int64_t> shape) {
    std::vector<float> y;
    for (int64_t row : rows) y.insert(y.end(), x.begin() + row * width, x.begin() + (row + 1) * width);
    return up(y, std::move(shape));
  };
  Tensor lq = local(q, Hq * D, {T, Hq, D}), lk = local(k, Hk * D, {T, Hk, D}), lv = local(v, Hk * D, {T, Hk, D}),
         ldo = local(dout, Hq * D, {T, Hq, D});
  Tensor o = gpu.alloc({T, Hq, D}), lse = gpu.alloc({Hq, T}), dq = gpu.alloc({T, Hq, D}), dk = gpu.alloc({T, Hk, D}),
         dv = gpu.alloc({T, Hk, D});
  std::unique_ptr<Communicator> ring_group = world->split(u, cp_rank), ulysses_group = world->split(cp_rank, u);
  std::unique_ptr<SequenceAttention> attention =
      layout_attention_make(*ring_group, *ulysses_group, gpu, S, pb.sharding, pb.causal, pb.precision);
  attention->forward(lq, lk, lv, Tensor{}, o, lse);
  attention->backward(lq, lk, lv, Tensor{}, o, lse, ldo, dq, dk, dv);

  // Relative L2 error over this rank's rows; `at(i, c)` reads row rows[i], column c of the candidate.
  auto error = [&](const std::vector<float>& yard, int64_t w, auto at) {
    double num = 0, den = 0;
    for (size_t i = 0; i < rows.size(); ++i)
      for (int64_t c = 0; c < w; ++c) {
        const double y = yard[rows[i] * w + c], x = at(i, c);
        if (!std::isfinite(y) && x == y) continue;
        num += (x - y) * (x - y);
        den += y * y;
      }
    return std::sqrt(num / std::max(den, 1e-300));
  };
  // lse is (H, T): row-major by head; compare it as (T, H).
  auto transpose = [](const std::vector<float>& x, int64_t H, int64_t n) {
    std::vector<float> y(x.size());
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < n; ++i) y[i * H + h] = x[h * n + i];
    return y;
  };
  const std::vector<float> ring_o = read(gpu, o), ring_lse = transpose(read(gpu, lse), Hq, T), ring_dq = read(gpu, dq),
                           ring_dk = read(gpu, dk), ring_dv = read(gpu, dv);
  const std::vector<float> cpu_lse = transpose(cpu.lse, Hq, S), one_lse = transpose(one.lse, Hq, S);
  struct Check {
    const char* name;
    const std::vector<float>& yard;
    const std::vector<float>& ring;
    const std::vector<float>& one;
    int64_t w;
  };
  for (const Check& c : {Check{"o", cpu.o, ring_o, one.o, Hq * D}, Check{"lse", cpu_lse, ring_lse, one_lse, Hq},
                         Check{"dq", cpu.dq, ring_dq, one.dq, Hq * D}, Check{"dk", cpu.dk, ring_dk, one.dk, Hk * D},
                         Check{"dv", cpu.dv, ring_dv, one.dv, Hk * D}}) {
    const double e_ring = error(c.yard, c.w, [&](size_t i, int64_t col) { return c.ring[i * c.w + col]; });
    const double e_one = error(c.yard, c.w, [&](size_t i, int64_t col) { return c.one[rows[i] * c.w + col]; });
    EXPECT_LE(e_ring, 2 * e_one + 1e-6) << c.name << " on rank " << r << ": ring " << e_ring << " one GPU " << e_one;
  }
}

void check_ring(const Problem& pb) { check_layout(pb, 1); }

// Ulysses over the world's GPUs (the heads' all-to-alls over NCCL, the local kernels on the gathered rows): MHA splits
// the K/V heads, MQA repeats its head on every GPU (dK/dV of the copies summed). One GPU: nothing to split, skipped.
void check_ulysses(const Problem& pb) {
  int n = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  if (n == 1) GTEST_SKIP() << "one rank: no Ulysses group";
  const std::string why = ulysses_heads_problem(pb.Hq, pb.Hk, n);
  if (!why.empty()) GTEST_SKIP() << why;
  check_layout(pb, n);
}
TEST(NcclUlysses, CausalZigzagMultiHead) {
  RT_SKIP_UNLESS_NCCL();
  check_ulysses({48 * 3, 4, 4, 64, true, Sharding::zigzag});
}
TEST(NcclUlysses, CausalZigzagMultiQuery) {
  RT_SKIP_UNLESS_NCCL();
  check_ulysses({48 * 3, 4, 1, 64, true, Sharding::zigzag});
}

TEST(NcclRing, CausalZigzag) {
  RT_SKIP_UNLESS_NCCL();
  check_ring({48 * 11, 4, 4, 64, true, Sharding::zigzag});
}
// The GPU kernels round K and V to bf16 anyway: blocks sent in bf16 change nothing but the bytes.
TEST(NcclRing, CausalZigzagBf16Blocks) {
  RT_SKIP_UNLESS_NCCL();
  check_ring({48 * 5, 4, 2, 64, true, Sharding::zigzag, Precision::bf16});
}
TEST(NcclRing, CausalContiguousGroupedQuery) {
  RT_SKIP_UNLESS_NCCL();
  check_ring({48 * 5, 4, 2, 128, true, Sharding::contiguous});
}
TEST(NcclRing, FullZigzag) {
  RT_SKIP_UNLESS_NCCL();
  check_ring({48 * 3, 2, 2, 32, false, Sharding::zigzag});
}

}  // namespace
}  // namespace rt
