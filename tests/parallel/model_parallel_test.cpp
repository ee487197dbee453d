// The whole model on a dp x cp mesh: loss and gradients equal the one-rank run on the same global batch.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>
#include <random>
#include <vector>

#include "attention/sequence_attention.h"
#include "parallel/mesh.h"
#include "parallel/ring_attention.h"
#include "parallel/sharding.h"
#include "trainer/model.h"

namespace rt {
namespace {

constexpr int64_t kSeq = 48, kBatch = 4;

ModelConfig tiny_model() {
  ModelConfig c;
  c.hidden_size = 32;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.intermediate_size = 48;
  c.vocab_size = 61;
  c.initializer_range = 0.2;
  return c;
}

Batch make_batch(Backend& be, const std::vector<int32_t>& tokens, const std::vector<int32_t>& labels,
                 const std::vector<int32_t>& pos, int64_t batch, int64_t seq) {
  const int64_t n = batch * seq;
  Batch b{batch, seq, be.alloc({n}, DType::i32), be.alloc({n}, DType::i32), be.alloc({n}, DType::i32)};
  be.upload(tokens.data(), b.tokens);
  be.upload(labels.data(), b.labels);
  be.upload(pos.data(), b.pos);
  return b;
}

void check_layout(int cp, int dp, Sharding sharding) {
  SCOPED_TRACE("cp " + std::to_string(cp) + " dp " + std::to_string(dp));
  Backend& be = cpu_backend();
  uint64_t seed = std::random_device{}();
  MPI_Bcast(&seed, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
  std::mt19937_64 rng(seed);
  const ModelConfig mc = tiny_model();
  std::uniform_int_distribution<int32_t> tok(0, static_cast<int32_t>(mc.vocab_size - 1));
  std::vector<int32_t> tokens(kBatch * kSeq), labels(kBatch * kSeq), pos(kBatch * kSeq);
  int64_t count = 0;
  for (int64_t i = 0; i < kBatch * kSeq; ++i) {
    tokens[i] = tok(rng);
    labels[i] = i % 7 == 3 ? -1 : tok(rng);
    pos[i] = static_cast<int32_t>(i % kSeq);
    count += labels[i] >= 0;
  }
  const float scale = 1.0f / static_cast<float>(count);

  // One rank, whole batch.
  auto local = local_attention_make(be);
  LlamaModel one(mc, be, *local);
  one.init_weights(seed);
  Tensor losses1 = be.alloc({kBatch * kSeq});
  one.forward_backward(make_batch(be, tokens, labels, pos, kBatch, kSeq), scale, losses1);
  const double loss1 = be.sum(losses1) * scale;

  // The mesh: this rank's sequences (dp slice) and tokens (cp shard) of the same batch.
  Mesh mesh = mesh_make(mpi_world(), cp, dp);
  RingAttention ring(*mesh.cp_group, be, kSeq, sharding);
  LlamaModel model(mc, be, ring);
  model.init_weights(seed);
  const std::vector<Chunk> shard = shard_chunks(kSeq, cp, mesh.cp_rank, sharding);
  const int64_t my_batch = kBatch / dp, first = mesh.dp_rank * my_batch;
  std::vector<int32_t> t, l, p;
  for (int64_t b = first; b < first + my_batch; ++b)
    for (const Chunk& c : shard)
      for (int64_t i = c.start; i < c.start + c.length; ++i) {
        t.push_back(tokens[b * kSeq + i]);
        l.push_back(labels[b * kSeq + i]);
        p.push_back(pos[b * kSeq + i]);
      }
  Tensor losses = be.alloc({my_batch * kSeq / cp});
  model.forward_backward(make_batch(be, t, l, p, my_batch, kSeq / cp), scale, losses);
  double loss = be.sum(losses) * scale;
  mesh.world->all_reduce_sum(&loss, 1);
  mesh.world->all_reduce_sum(model.params().grads());

  EXPECT_NEAR(loss, loss1, 1e-6 * std::abs(loss1));
  const Tensor& g = model.params().grads();
  const Tensor& g1 = one.params().grads();
  double num = 0, den = 0;
  for (int64_t i = 0; i < g.numel(); ++i) {
    const double d = g.f32()[i] - g1.f32()[i];
    num += d * d;
    den += static_cast<double>(g1.f32()[i]) * g1.f32()[i];
  }
  // Only summation order differs (ring merges, per-rank partial sums): ~100 fp32 roundings at most.
  EXPECT_LT(std::sqrt(num / den), 1e-5) << "relative L2 gradient difference";
}

TEST(ModelParallel, EveryMeshOfThisWorldMatchesOneRank) {
  int world = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  for (int cp = 1; cp <= world; ++cp) {
    if (world % cp != 0 || kSeq % (2 * cp) != 0 || kBatch % (world / cp) != 0) continue;
    check_layout(cp, world / cp, Sharding::zigzag);
    if (cp > 1) check_layout(cp, world / cp, Sharding::contiguous);
  }
}

}  // namespace
}  // namespace rt
