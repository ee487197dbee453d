// Ring attention forward and backward over the device's flash kernels, with the fp32 log-sigmoid merge.
#include "parallel/ring_attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "attention/attention_ops.h"
#include "core/check.h"
#include "core/timer.h"

namespace rt {

struct RingAttention::Pair {
  int64_t q_row = 0, k_row = 0;  // first local row of the query chunk / of the key chunk in the held block
  Chunk q, k;                    // their global positions
};

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

}  // namespace

RingAttention::RingAttention(Communicator& cp_group, Backend& backend, int64_t seq_len, Sharding sharding, bool causal,
                             Precision precision)
    : comm_(cp_group),
      backend_(backend),
      seq_len_(seq_len),
      sharding_(sharding),
      causal_(causal),
      bf16_(precision == Precision::bf16),
      rank_(cp_group.rank()),
      size_(cp_group.size()),
      ops_(attention_ops_for(backend.device())) {}

Tensor RingAttention::scratch(Slot slot, std::vector<int64_t> shape, DType dtype) {
  Tensor& t = scratch_[slot];
  if (!t.defined() || t.shape() != shape || t.dtype() != dtype) t = backend_.alloc(std::move(shape), dtype);
  return t;
}

// The travelling [K | V] blocks (2, T, Hk, D), `held` starting as this rank's: fp32, or with bf16 inputs bf16 (half
// the bytes; the kernels round K and V to bf16 anyway, so the results are those of fp32 blocks).
void RingAttention::kv_blocks_make(const Tensor& k, const Tensor& v, Tensor& held, Tensor& next) {
  const int64_t T = k.dim(0), Hk = k.dim(1), D = k.dim(2), kv_elems = T * Hk * D;
  const DType type = bf16_ ? DType::bf16 : DType::f32;
  held = scratch(kHeld, {2, T, Hk, D}, type);
  next = scratch(kNext, {2, T, Hk, D}, type);
  Tensor held_k = held.slice(0, {T, Hk, D}), held_v = held.slice(kv_elems, {T, Hk, D});
  if (bf16_) {
    backend_.to_bf16(k, held_k);
    backend_.to_bf16(v, held_v);
  } else {
    backend_.copy(k, held_k);
    backend_.copy(v, held_v);
  }
}

// The held block as fp32 for the kernels: itself, or bf16 widened into a scratch buffer.
const float* RingAttention::kv_block_f32(const Tensor& held) {
  if (!bf16_) return held.f32();
  Tensor wide = scratch(kHeldF32, held.shape());
  backend_.from_bf16(held, wide);
  return wide.f32();
}

// At step s this rank holds the key/value block of rank (rank - s) mod cp. With zigzag this yields the
// three cases of balanced ring attention: s = 0 the causal diagonal, an earlier source all queries against
// its first half, a later source only the second query half against all of it.
std::vector<RingAttention::Pair> RingAttention::pairs_at_step(int step, const std::vector<int64_t>& doc_first,
                                                              int64_t* skipped) const {
  const int src = (rank_ - step + size_) % size_;
  const std::vector<Chunk> qc = shard_chunks(seq_len_, size_, rank_, sharding_);
  const std::vector<Chunk> kc = shard_chunks(seq_len_, size_, src, sharding_);
  std::vector<Pair> pairs;
  int64_t q_row = 0;
  for (size_t c = 0; c < qc.size(); ++c) {
    const Chunk& q = qc[c];
    int64_t k_row = 0;
    for (const Chunk& k : kc) {
      const bool fully_masked = causal_ && k.start > q.start + q.length - 1;
      const bool other_documents = !doc_first.empty() && doc_first[c] > k.start + k.length - 1;
      if (!fully_masked && other_documents && skipped) ++*skipped;
      if (!fully_masked && !other_documents) pairs.push_back({q_row, k_row, q, k});
      k_row += k.length;
    }
    q_row += q.length;
  }
  return pairs;
}

std::vector<int64_t> RingAttention::doc_first_of(const Tensor& doc_start) {
  if (!doc_start.defined()) return {};
  std::vector<int32_t> host(static_cast<size_t>(doc_start.numel()));
  backend_.download(doc_start, host.data());
  std::vector<int64_t> first;
  int64_t row = 0;
  for (const Chunk& c : shard_chunks(seq_len_, size_, rank_, sharding_)) {
    first.push_back(*std::min_element(host.begin() + row, host.begin() + row + c.length));
    row += c.length;
  }
  return first;
}

void RingAttention::forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& doc_start, Tensor& o,
                            Tensor& lse) {
  const int64_t T = q.dim(0), Hq = q.dim(1), Hk = k.dim(1), D = q.dim(2);
  RT_CHECK(T * size_ == seq_len_ && k.dim(0) == T, "ring attention: local length " + std::to_string(T) + " x " +
                                                        std::to_string(size_) + " ranks != seq_len " + std::to_string(seq_len_));
  const int64_t kv_elems = T * Hk * D;
  Tensor held, next;
  kv_blocks_make(k, v, held, next);
  Tensor block_o = scratch(kBlockO, {T, Hq, D}), block_lse = scratch(kBlockLse, {Hq, T});
  backend_.fill(o, 0.f);
  backend_.fill(lse, kNegInf);
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  const std::vector<int64_t> doc_first = doc_first_of(doc_start);
  for (int s = 0; s < size_; ++s) {
    CommHandle exchange;
    if (s + 1 < size_) {
      exchange = comm_.sendrecv_async(held, (rank_ + 1) % size_, next, (rank_ - 1 + size_) % size_);
      stats_.bytes_sent += static_cast<int64_t>(held.bytes());
    }
    Timer compute;
    const float* kp = kv_block_f32(held);
    const float* vp = kp + kv_elems;
    const std::vector<Pair> pairs = pairs_at_step(s, doc_first, &stats_.block_pairs_skipped);
    stats_.block_pairs += static_cast<int64_t>(pairs.size());
    for (const Pair& pr : pairs) {
      AttentionProblem p{pr.q.length, pr.k.length, Hq, Hk, D, causal_, pr.q.start, pr.k.start, scale, bf16_,
                         doc_start.defined() ? doc_start.i32() + pr.q_row : nullptr};
      ops_.forward(p, q.f32() + pr.q_row * Hq * D, kp + pr.k_row * Hk * D, vp + pr.k_row * Hk * D, block_o.f32(),
                   block_lse.f32());
      ops_.merge(block_o.f32(), block_lse.f32(), pr.q.length, pr.q_row, T, Hq, D, o.f32(), lse.f32());
    }
    stats_.compute_s += compute.seconds();
    if (exchange.pending()) {
      Timer waiting;
      comm_.wait(exchange);
      stats_.wait_s += waiting.seconds();
      std::swap(held, next);
    }
  }
}

void RingAttention::backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& doc_start,
                             const Tensor& o, const Tensor& lse, const Tensor& dout, Tensor& dq, Tensor& dk,
                             Tensor& dv) {
  const int64_t T = q.dim(0), Hq = q.dim(1), Hk = k.dim(1), D = q.dim(2);
  const int64_t kv_elems = T * Hk * D;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  // delta = rowsum(dO * O) from the merged (global) O; lse is the merged (global) LSE.
  Tensor delta = scratch(kDelta, {Hq, T});
  AttentionProblem whole{T, T, Hq, Hk, D, false, 0, 0, scale};
  ops_.delta(whole, o.f32(), dout.f32(), delta.f32());
  // Per query chunk, contiguous (Hq, n) copies of lse and delta for the kernel.
  const std::vector<Chunk> my_chunks = shard_chunks(seq_len_, size_, rank_, sharding_);
  std::vector<Tensor> lse_chunk, delta_chunk;
  for (int64_t row = 0; const Chunk& c : my_chunks) {
    lse_chunk.push_back(backend_.alloc({Hq, c.length}));
    delta_chunk.push_back(backend_.alloc({Hq, c.length}));
    ops_.gather_columns(lse.f32(), Hq, T, row, c.length, lse_chunk.back().f32());
    ops_.gather_columns(delta.f32(), Hq, T, row, c.length, delta_chunk.back().f32());
    row += c.length;
  }
  auto chunk_index = [&](int64_t q_row) {
    size_t i = 0;
    for (int64_t row = 0; row != q_row; row += my_chunks[i++].length) {}
    return i;
  };

  const std::vector<int64_t> doc_first = doc_first_of(doc_start);
  Tensor held, next;
  kv_blocks_make(k, v, held, next);
  // dK/dV of the held block: computed into grad[s%2], plus the accumulator that arrived in arrived[s%2];
  // then sent on to rank+1. Alternating buffers keep a buffer untouched while its send is in flight.
  Tensor grad[2] = {scratch(kGrad0, {2, T, Hk, D}), scratch(kGrad1, {2, T, Hk, D})};
  Tensor arrived[2] = {scratch(kArrived0, {2, T, Hk, D}), scratch(kArrived1, {2, T, Hk, D})};
  backend_.fill(dq, 0.f);
  CommHandle grad_exchange;
  for (int s = 0; s < size_; ++s) {
    CommHandle exchange;
    if (s + 1 < size_) {
      exchange = comm_.sendrecv_async(held, (rank_ + 1) % size_, next, (rank_ - 1 + size_) % size_);
      stats_.bytes_sent += static_cast<int64_t>(held.bytes());
    }
    Tensor& g = grad[s % 2];
    Timer compute;
    backend_.fill(g, 0.f);
    const float* kp = kv_block_f32(held);
    const float* vp = kp + kv_elems;
    for (const Pair& pr : pairs_at_step(s, doc_first)) {
      const size_t c = chunk_index(pr.q_row);
      AttentionProblem p{pr.q.length, pr.k.length, Hq, Hk, D, causal_, pr.q.start, pr.k.start, scale, bf16_,
                         doc_start.defined() ? doc_start.i32() + pr.q_row : nullptr};
      ops_.backward(p, q.f32() + pr.q_row * Hq * D, kp + pr.k_row * Hk * D, vp + pr.k_row * Hk * D,
                    dout.f32() + pr.q_row * Hq * D, lse_chunk[c].f32(), delta_chunk[c].f32(),
                    dq.f32() + pr.q_row * Hq * D, g.f32() + pr.k_row * Hk * D, g.f32() + kv_elems + pr.k_row * Hk * D);
    }
    stats_.compute_s += compute.seconds();
    if (s > 0) {
      Timer waiting;
      comm_.wait(grad_exchange);  // the accumulator of this same block from rank-1's previous step
      stats_.wait_s += waiting.seconds();
      backend_.axpy(1.f, arrived[(s - 1) % 2], g);
    }
    grad_exchange = comm_.sendrecv_async(g, (rank_ + 1) % size_, arrived[s % 2], (rank_ - 1 + size_) % size_);
    stats_.bytes_sent += static_cast<int64_t>(g.bytes());
    if (exchange.pending()) {
      Timer waiting;
      comm_.wait(exchange);
      stats_.wait_s += waiting.seconds();
      std::swap(held, next);
    }
  }
  Timer waiting;
  comm_.wait(grad_exchange);  // our own block's dK/dV, home after visiting every rank
  stats_.delivery_wait_s += waiting.seconds();
  const Tensor& home = arrived[(size_ - 1) % 2];
  backend_.copy(home.slice(0, {T, Hk, D}), dk);
  backend_.copy(home.slice(kv_elems, {T, Hk, D}), dv);
}

}  // namespace rt
