// The whole model on a dp x cp x ulysses mesh: loss and gradients equal the one-rank run on the same global batch.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>
#include <random>
#include <vector>

#include "attention/sequence_attention.h"
#include "data/rank_shard.h"
#include "parallel/mesh.h"
#include "parallel/ring_attention.h"
#include "parallel/sharding.h"
#include "parallel/ulysses_attention.h"
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
  Batch b{batch, seq, be.alloc({n}, DType::i32), be.alloc({n}, DType::i32), be.alloc({n}, DType::i32), Tensor{}};
  be.upload(tokens.data(), b.tokens);
  be.upload(labels.data(), b.labels);
  be.upload(pos.data(), b.pos);
  return b;
}

// The gradients of `model` equal those of `one` up to summation order (ring merges, per-rank partial sums: ~100 fp32
// roundings at most), in relative L2 norm.
void expect_same_gradients(LlamaModel& model, LlamaModel& one) {
  const Tensor& g = model.params().grads();
  const Tensor& g1 = one.params().grads();
  double num = 0, den = 0;
  for (int64_t i = 0; i < g.numel(); ++i) {
    const double d = g.f32()[i] - g1.f32()[i];
    num += d * d;
    den += static_cast<double>(g1.f32()[i]) * g1.f32()[i];
  }
  EXPECT_LT(std::sqrt(num / den), 1e-5) << "relative L2 gradient difference";
}

std::unique_ptr<SequenceAttention> mesh_attention(Backend& be, Mesh& mesh, int64_t seq_len, Sharding sharding) {
  return layout_attention_make(*mesh.cp_group, *mesh.ulysses_group, be, seq_len, sharding);
}

// The ring inside `attention` (mesh_attention's), or nullptr.
RingAttention* ring_of(SequenceAttention& attention) {
  if (auto* u = dynamic_cast<UlyssesAttention*>(&attention)) return dynamic_cast<RingAttention*>(&u->inner());
  return dynamic_cast<RingAttention*>(&attention);
}

void check_layout(int cp, int dp, Sharding sharding, int ulysses = 1) {
  SCOPED_TRACE("cp " + std::to_string(cp) + " dp " + std::to_string(dp) + " ulysses " + std::to_string(ulysses));
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
  Mesh mesh = mesh_make(mpi_world(), cp, dp, ulysses);
  std::unique_ptr<SequenceAttention> attention = mesh_attention(be, mesh, kSeq, sharding);
  LlamaModel model(mc, be, *attention);
  model.init_weights(seed);
  const std::vector<Chunk> shard = mesh_chunks(mesh, kSeq, sharding);
  const int64_t T = kSeq / (cp * ulysses);
  const int64_t my_batch = kBatch / dp, first = mesh.dp_rank * my_batch;
  std::vector<int32_t> t, l, p;
  for (int64_t b = first; b < first + my_batch; ++b)
    for (const Chunk& c : shard)
      for (int64_t i = c.start; i < c.start + c.length; ++i) {
        t.push_back(tokens[b * kSeq + i]);
        l.push_back(labels[b * kSeq + i]);
        p.push_back(pos[b * kSeq + i]);
      }
  Tensor losses = be.alloc({my_batch * T});
  model.forward_backward(make_batch(be, t, l, p, my_batch, T), scale, losses);
  double loss = be.sum(losses) * scale;
  mesh.world->all_reduce_sum(&loss, 1);
  mesh.world->all_reduce_sum(model.params().grads());

  EXPECT_NEAR(loss, loss1, 1e-6 * std::abs(loss1));
  expect_same_gradients(model, one);
}

TEST(ModelParallel, EveryMeshOfThisWorldMatchesOneRank) {
  int world = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  const ModelConfig mc = tiny_model();
  for (int ulysses = 1; ulysses <= world; ++ulysses)
    for (int cp = 1; cp * ulysses <= world; ++cp) {
      const int dp = world / (cp * ulysses);
      if (world % (cp * ulysses) != 0 || kSeq % (2 * cp * ulysses) != 0 || kBatch % dp != 0) continue;
      if (!ulysses_heads_problem(mc.num_attention_heads, mc.num_key_value_heads, ulysses).empty()) continue;
      check_layout(cp, dp, Sharding::zigzag, ulysses);
      if (cp > 1) check_layout(cp, dp, Sharding::contiguous, ulysses);
    }
}

// Packed documents (data.document_mask): two sequences of 90 tokens holding documents of 13, 1, 40, 19, 17 and of
// 45, 45 tokens, on a mesh of every cp x ulysses dividing this world (zigzag, 90 padded to a multiple of
// 2 cp ulysses, through rank_shard as the trainer shards them): loss and gradients equal those of each document run alone on one rank, to
// fp32 precision; with RoPE positions restarted per document (data.reset_positions) and with global positions (the
// lone documents then get the same positions).
void check_packed_documents(int cp, int dp, bool reset_positions, int ulysses = 1) {
  SCOPED_TRACE("cp " + std::to_string(cp) + " dp " + std::to_string(dp) + " ulysses " + std::to_string(ulysses) +
               " reset_positions " + std::to_string(reset_positions));
  constexpr int64_t kPacked = 90, kSequences = 2;
  const std::vector<std::vector<int64_t>> documents = {{13, 1, 40, 19, 17}, {45, 45}};
  Backend& be = cpu_backend();
  uint64_t seed = std::random_device{}();
  MPI_Bcast(&seed, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
  std::mt19937_64 rng(seed);
  const ModelConfig mc = tiny_model();
  std::uniform_int_distribution<int32_t> tok(0, static_cast<int32_t>(mc.vocab_size - 1));
  LocalBatch full;  // the global batch as the loader gives it
  full.batch = kSequences;
  full.seq = kPacked;
  int64_t count = 0;
  for (int64_t b = 0; b < kSequences; ++b)
    for (int64_t start = 0; int64_t length : documents[b]) {
      for (int64_t t = 0; t < length; ++t) {
        full.tokens.push_back(tok(rng));
        full.labels.push_back(t % 5 == 4 ? -1 : tok(rng));
        full.pos.push_back(static_cast<int32_t>(reset_positions ? t : start + t));
        full.doc_start.push_back(static_cast<int32_t>(start));
        full.long_range.push_back(0);
        count += full.labels.back() >= 0;
      }
      start += length;
    }
  const float scale = 1.0f / static_cast<float>(count);

  // Each document alone, on one rank: gradients accumulate over the documents.
  auto local = local_attention_make(be);
  LlamaModel one(mc, be, *local);
  one.init_weights(seed);
  double loss1 = 0;
  for (int64_t b = 0, row = 0; b < kSequences; ++b)
    for (int64_t length : documents[b]) {
      auto part = [&](const std::vector<int32_t>& x) {
        return std::vector<int32_t>(x.begin() + row, x.begin() + row + length);
      };
      Tensor losses = be.alloc({length});
      one.forward_backward(make_batch(be, part(full.tokens), part(full.labels), part(full.pos), 1, length), scale,
                           losses);
      loss1 += be.sum(losses) * scale;
      row += length;
    }

  // Packed, on the mesh: this rank's sequences (dp slice) and tokens (cp shard) of the same batch.
  Mesh mesh = mesh_make(mpi_world(), cp, dp, ulysses);
  const int64_t padded = sharded_length(kPacked, cp, Sharding::zigzag, ulysses);
  std::unique_ptr<SequenceAttention> attention = mesh_attention(be, mesh, padded, Sharding::zigzag);
  LlamaModel model(mc, be, *attention);
  model.init_weights(seed);
  const int64_t my_batch = kSequences / dp, first = mesh.dp_rank * my_batch;
  LocalBatch mine;
  mine.batch = my_batch;
  mine.seq = kPacked;
  auto slice = [&](const auto& x) {
    using V = std::decay_t<decltype(x)>;
    return V(x.begin() + first * kPacked, x.begin() + (first + my_batch) * kPacked);
  };
  mine.tokens = slice(full.tokens), mine.labels = slice(full.labels), mine.pos = slice(full.pos);
  mine.doc_start = slice(full.doc_start), mine.long_range = slice(full.long_range);
  const LocalBatch shard = rank_shard(mine, mesh_chunks(mesh, padded, Sharding::zigzag));
  Batch batch = make_batch(be, shard.tokens, shard.labels, shard.pos, my_batch, shard.seq);
  batch.doc_start = be.alloc({my_batch * shard.seq}, DType::i32);
  be.upload(shard.doc_start.data(), batch.doc_start);
  Tensor losses = be.alloc({my_batch * shard.seq});
  model.forward_backward(batch, scale, losses);
  double loss = be.sum(losses) * scale;
  mesh.world->all_reduce_sum(&loss, 1);
  mesh.world->all_reduce_sum(model.params().grads());
  RingAttention* ring = ring_of(*attention);
  double skipped = ring ? static_cast<double>(ring->stats().block_pairs_skipped) : 0;  // over the ranks
  mesh.world->all_reduce_sum(&skipped, 1);
  if (cp > 1) {
    EXPECT_GT(skipped, 0) << "no ring block was skipped for lying in other documents";
  }

  EXPECT_NEAR(loss, loss1, 1e-6 * std::abs(loss1));
  expect_same_gradients(model, one);
}

TEST(ModelParallel, PackedDocumentsEqualTheDocumentsOneByOne) {
  int world = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  for (int ulysses : {1, 2, 4})
    for (int cp = 1; cp * ulysses <= world; ++cp) {
      if (world % (cp * ulysses) != 0 || 2 % (world / (cp * ulysses)) != 0) continue;
      check_packed_documents(cp, world / (cp * ulysses), true, ulysses);
      check_packed_documents(cp, world / (cp * ulysses), false, ulysses);
    }
}

}  // namespace
}  // namespace rt
