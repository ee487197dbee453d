// Benchmark: ring attention forward+backward over MPI ranks — time, per-rank compute and wait, exchange cost
// alone, and (--error-sweep) the error against fp64 as the ring grows. Checks itself before timing.
//   mpirun -np 2 ring_attention_bench --seq 16384 --threads 1      vs   ring_attention_bench --seq 16384 --threads 2
#include <mpi.h>
#include <omp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "attention/attention_kernels.h"
#include "core/timer.h"
#include "parallel/ring_attention.h"

namespace {

using namespace rt;

struct Inputs {
  std::vector<float> q, k, v, dout;  // whole sequence
};

Inputs random_inputs(int64_t S, int64_t Hq, int64_t Hk, int64_t D, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd;
  Inputs in;
  for (auto* x : {&in.q, &in.dout}) x->resize(S * Hq * D);
  for (auto* x : {&in.k, &in.v}) x->resize(S * Hk * D);
  for (auto* x : {&in.q, &in.k, &in.v, &in.dout})
    for (float& e : *x) e = nd(rng);
  return in;
}

Tensor local_rows(Backend& be, const std::vector<float>& x, const std::vector<Chunk>& chunks, int64_t width,
                  std::vector<int64_t> shape) {
  Tensor t = be.alloc(shape);
  int64_t row = 0;
  for (const Chunk& c : chunks)
    for (int64_t i = 0; i < c.length; ++i, ++row)
      std::copy(x.begin() + (c.start + i) * width, x.begin() + (c.start + i + 1) * width, t.f32() + row * width);
  return t;
}

struct RingRun {
  Tensor o, lse, dq, dk, dv;
};

RingRun ring_run(RingAttention& ring, Backend& be, const Inputs& in, const std::vector<Chunk>& chunks, int64_t T,
                 int64_t Hq, int64_t Hk, int64_t D) {
  Tensor q = local_rows(be, in.q, chunks, Hq * D, {T, Hq, D}), k = local_rows(be, in.k, chunks, Hk * D, {T, Hk, D});
  Tensor v = local_rows(be, in.v, chunks, Hk * D, {T, Hk, D}), dout = local_rows(be, in.dout, chunks, Hq * D, {T, Hq, D});
  RingRun r{be.alloc({T, Hq, D}), be.alloc({Hq, T}), be.alloc({T, Hq, D}), be.alloc({T, Hk, D}), be.alloc({T, Hk, D})};
  ring.forward(q, k, v, rt::Tensor{}, r.o, r.lse);
  ring.backward(q, k, v, rt::Tensor{}, r.o, r.lse, dout, r.dq, r.dk, r.dv);
  return r;
}

// Max relative (L2) error of this rank's o and dq against one-rank results `o1`, `dq1` (or fp64 ones).
template <typename Ref>
double rel_error(const Tensor& got, const std::vector<Ref>& ref, const std::vector<Chunk>& chunks, int64_t width) {
  double num = 0, den = 0;
  int64_t row = 0;
  for (const Chunk& c : chunks)
    for (int64_t i = 0; i < c.length; ++i, ++row)
      for (int64_t j = 0; j < width; ++j) {
        const double a = got.f32()[row * width + j], b = ref[(c.start + i) * width + j];
        num += (a - b) * (a - b);
        den += b * b;
      }
  return std::sqrt(num / den);
}

// fp64 forward output and dq of causal attention, for the error sweep.
void reference_fp64(const Inputs& in, int64_t S, int64_t H, int64_t D, std::vector<double>& o, std::vector<double>& dq) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  o.assign(S * H * D, 0);
  dq.assign(S * H * D, 0);
#pragma omp parallel for collapse(2) schedule(dynamic)
  for (int64_t h = 0; h < H; ++h)
    for (int64_t i = 0; i < S; ++i) {
      std::vector<double> p(i + 1), dp(i + 1);
      double mx = -1e300, sum = 0, delta = 0;
      for (int64_t j = 0; j <= i; ++j) {
        double s = 0;
        for (int64_t d = 0; d < D; ++d) s += double(in.q[(i * H + h) * D + d]) * in.k[(j * H + h) * D + d];
        mx = std::max(mx, p[j] = s * scale);
      }
      for (int64_t j = 0; j <= i; ++j) sum += (p[j] = std::exp(p[j] - mx));
      for (int64_t d = 0; d < D; ++d) {
        double acc = 0;
        for (int64_t j = 0; j <= i; ++j) acc += p[j] / sum * in.v[(j * H + h) * D + d];
        o[(i * H + h) * D + d] = acc;
        delta += acc * in.dout[(i * H + h) * D + d];
      }
      for (int64_t j = 0; j <= i; ++j) {
        double s = 0;
        for (int64_t d = 0; d < D; ++d) s += double(in.dout[(i * H + h) * D + d]) * in.v[(j * H + h) * D + d];
        const double ds = p[j] / sum * (s - delta) * scale;
        for (int64_t d = 0; d < D; ++d) dq[(i * H + h) * D + d] += ds * in.k[(j * H + h) * D + d];
      }
    }
}

}  // namespace

int main(int argc, char** argv) {
  int provided = 0;  // MPI_THREAD_MULTIPLE: the communicators run their exchanges on a thread
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  CLI::App app{"ringtrain ring-attention benchmark"};
  int64_t seq = 16384, heads = 8, kv_heads = 0, dim = 64, threads = 1, reps = 3;
  std::string sharding_name = "zigzag";
  bool error_sweep = false;
  app.add_option("--seq", seq, "total sequence length");
  app.add_option("--heads", heads, "query heads");
  app.add_option("--kv-heads", kv_heads, "key/value heads (0 = heads)");
  app.add_option("--head-dim", dim, "head dim");
  app.add_option("--threads", threads, "OpenMP threads per rank");
  app.add_option("--reps", reps, "timed repetitions (after one warm-up)");
  app.add_option("--sharding", sharding_name, "zigzag | contiguous");
  app.add_flag("--error-sweep", error_sweep, "print the error of o and dq against fp64 (use a small --seq)");
  std::string precision_name_arg = "fp32";
  app.add_option("--precision", precision_name_arg, "fp32 | bf16 (K/V in bf16 on the ring, bf16 tile inputs)")
      ->check(CLI::IsMember({"fp32", "bf16"}));
  CLI11_PARSE(app, argc, argv);
  omp_set_num_threads(static_cast<int>(threads));
  const int64_t Hk = kv_heads ? kv_heads : heads;
  Backend& be = cpu_backend();
  std::unique_ptr<Communicator> world = mpi_world();
  const int rank = world->rank(), cp = world->size();
  const Sharding sharding = sharding_parse(sharding_name);
  const Precision precision = precision_name_arg == "bf16" ? Precision::bf16 : Precision::fp32;

  // Check: a small problem against one-rank flash attention over the whole sequence.
  {
    const int64_t S = 48 * 4, H = 2, D = 32;
    Inputs in = random_inputs(S, H, H, D, 11);
    const float scale = 1.0f / std::sqrt(static_cast<float>(D));
    AttentionProblem whole{S, S, H, H, D, true, 0, 0, scale, precision == Precision::bf16};
    std::vector<float> o1(S * H * D), lse1(H * S), delta(H * S), dq1(S * H * D, 0), dk1(S * H * D, 0), dv1(S * H * D, 0);
    attention_flash_forward(whole, in.q.data(), in.k.data(), in.v.data(), o1.data(), lse1.data());
    attention_delta(whole, o1.data(), in.dout.data(), delta.data());
    attention_flash_backward(whole, in.q.data(), in.k.data(), in.v.data(), in.dout.data(), lse1.data(), delta.data(),
                             dq1.data(), dk1.data(), dv1.data());
    RingAttention ring(*world, be, S, sharding, true, precision);
    auto chunks = shard_chunks(S, cp, rank, sharding);
    RingRun r = ring_run(ring, be, in, chunks, S / cp, H, H, D);
    double err = std::max(rel_error(r.o, o1, chunks, H * D), rel_error(r.dq, dq1, chunks, H * D));
    world->all_reduce_sum(&err, 1);  // sum of per-rank errors: small if every rank is right
    // The ring computes what one rank does, up to the merge's roundings (fp32) or the P tiles' bf16 roundings, which
    // depend on the blocks: ~1e-7 or ~1e-3 relative.
    if (!(err < (precision == Precision::bf16 ? 1e-2 : 1e-5) * cp)) {
      if (rank == 0) std::printf("FAIL: ring attention differs from one-rank flash attention (error %.3g)\n", err);
      MPI_Finalize();
      return 1;
    }
  }

  if (error_sweep) {
    Inputs in = random_inputs(seq, heads, heads, dim, 5);
    std::vector<double> o64, dq64;
    reference_fp64(in, seq, heads, dim, o64, dq64);
    RingAttention ring(*world, be, seq, sharding, true, precision);
    auto chunks = shard_chunks(seq, cp, rank, sharding);
    RingRun r = ring_run(ring, be, in, chunks, seq / cp, heads, heads, dim);
    double e[2] = {rel_error(r.o, o64, chunks, heads * dim), rel_error(r.dq, dq64, chunks, heads * dim)};
    double all[2] = {e[0] * e[0], e[1] * e[1]};
    world->all_reduce_sum(all, 2);  // per-rank relative errors are over equal-sized shards: RMS over ranks
    if (rank == 0)
      std::printf("| %d | %ld | %.3g | %.3g |\n", cp, seq, std::sqrt(all[0] / cp), std::sqrt(all[1] / cp));
    MPI_Finalize();
    return 0;
  }

  Inputs in = random_inputs(seq, heads, Hk, dim, 7);
  RingAttention ring(*world, be, seq, sharding, true, precision);
  auto chunks = shard_chunks(seq, cp, rank, sharding);
  const int64_t T = seq / cp;
  ring_run(ring, be, in, chunks, T, heads, Hk, dim);  // warm-up
  std::vector<double> total;
  ring.stats_reset();
  for (int64_t i = 0; i < reps; ++i) {
    world->barrier();
    Timer t;
    ring_run(ring, be, in, chunks, T, heads, Hk, dim);
    world->barrier();
    total.push_back(t.seconds());
  }
  std::sort(total.begin(), total.end());
  const double med = total[total.size() / 2];
  // The exchanges alone (no compute): cp-1 K/V moves forward, cp-1 K/V and cp dK/dV moves backward.
  const DType kv_type = precision == Precision::bf16 ? DType::bf16 : DType::f32;  // what the ring sends
  Tensor a = be.alloc({2, T, Hk, dim}, kv_type), b = be.alloc({2, T, Hk, dim}, kv_type);
  world->barrier();
  Timer comm_timer;
  for (int64_t i = 0; i < reps; ++i)
    for (int s = 0; s < 3 * cp - 2; ++s) {
      CommHandle h = world->sendrecv_async(a, (rank + 1) % cp, b, (rank - 1 + cp) % cp);
      world->wait(h);
    }
  const double comm_alone = cp > 1 ? comm_timer.seconds() / reps : 0.0;
  double per_rank[4] = {ring.stats().compute_s / reps, ring.stats().wait_s / reps,
                        ring.stats().delivery_wait_s / reps, comm_alone};
  std::vector<double> gathered(4 * cp);
  MPI_Gather(per_rank, 4, MPI_DOUBLE, gathered.data(), 4, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  if (rank == 0) {
    const double flops = 3.5 * 4.0 * seq * seq * dim * heads / 2;
    std::printf("ring attention fwd+bwd: seq %ld heads %ld/%ld dim %ld | %d ranks x %ld threads | %s | %s | %.1f ms | %.1f GFLOP/s\n",
                seq, heads, Hk, dim, cp, threads, sharding_name.c_str(), precision_name(precision), med * 1e3,
                flops / med / 1e9);
    // Of the 3cp-2 exchanges, 3cp-3 are posted before compute they can hide behind; the last (dK/dV home) is not.
    for (int r = 0; r < cp; ++r) {
      const double compute = gathered[4 * r], wait = gathered[4 * r + 1], delivery = gathered[4 * r + 2];
      const double overlappable = cp > 1 ? gathered[4 * r + 3] * (3 * cp - 3) / (3 * cp - 2) : 0.0;
      const double hidden = overlappable > 0 ? std::clamp(1.0 - wait / overlappable, 0.0, 1.0) : 1.0;
      std::printf("  rank %d: compute %.1f ms | blocked in overlapped exchanges %.1f ms of %.1f ms they take alone "
                  "(hidden %.0f%%) | final dK/dV delivery %.1f ms\n",
                  r, compute * 1e3, wait * 1e3, overlappable * 1e3, 100 * hidden, delivery * 1e3);
    }
    std::printf("PASS: ring result checked against one-rank flash attention\n");
  }
  MPI_Finalize();
  return 0;
}
