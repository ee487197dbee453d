// RingKvCacheAttention: decoding from a prompt too long for one rank. The prompt is prefilled with ring attention
// over the cp ranks; each rank keeps its shard's K/V, and every decode step merges the ranks' partial attention.
#pragma once
#include <memory>
#include <vector>

#include "attention/sequence_attention.h"
#include "parallel/communicator.h"
#include "parallel/sharding.h"

namespace rt {

struct AttentionOps;
class RingAttention;

// The model calls forward once per layer, in layer order, for each step:
//   prefill (the first step): this rank's rows of the prompt padded to sharded_length(prompt, cp) (prompt_chunks());
//     attention is the ring's, and each layer's cache keeps the K/V of the rank's real prompt tokens (not padding).
//   decode (every later step): one new token, the same on every rank. Its K/V join the cache of rank
//     (position mod cp) (round robin: the shards stay even); every rank attends the query to its own cache (the
//     device's decode kernel) and the partial outputs are merged by their log-sum-exp: o = sum_r w_r o_r / sum_r w_r,
//     w_r = exp(lse_r - max lse), in rank order on every rank after an all-reduce, so every rank holds the same o.
// The backward is not defined (no training through a cache). Collective over cp_group.
class RingKvCacheAttention final : public SequenceAttention {
 public:
  RingKvCacheAttention(Communicator& cp_group, Backend& backend, int64_t layers, int64_t prompt_tokens,
                       int64_t max_new_tokens, int64_t kv_heads, int64_t head_dim, Sharding sharding,
                       Precision precision);
  ~RingKvCacheAttention() override;

  // Prefill: q (T,Hq,D), k, v (T,Hk,D) with T = prompt_padded() / cp; decode: T = 1.
  void forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& doc_start, Tensor& o,
               Tensor& lse) override;
  void backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& doc_start, const Tensor& o,
                const Tensor& lse, const Tensor& dout, Tensor& dq, Tensor& dk, Tensor& dv) override;

  const std::vector<Chunk>& prompt_chunks() const { return chunks_; }  // this rank's rows of the padded prompt
  int64_t prompt_padded() const { return padded_; }
  int64_t length() const { return length_; }       // tokens of the sequence so far (every rank the same)
  int64_t local_length() const { return local_; }  // of them in this rank's cache
  int64_t capacity() const { return capacity_; }

 private:
  // o (1,Hq,D), lse (Hq,1): this rank's partial attention (attended: it has keys), merged over the ranks in place.
  void merge(Tensor& o, Tensor& lse, int64_t Hq, int64_t D, bool attended);

  Communicator& comm_;
  Backend& backend_;
  const AttentionOps& ops_;
  std::unique_ptr<RingAttention> ring_;  // the prefill's attention
  std::vector<Chunk> chunks_;
  int64_t layers_, prompt_, padded_, capacity_;
  int64_t length_ = 0, local_ = 0, layer_ = 0;
  bool prefilled_ = false;
  std::vector<Tensor> k_, v_;  // (capacity, Hk, D) per layer
  Tensor gathered_;            // (cp, Hq*D + Hq): each rank's partial o and lse in its row, zeros elsewhere
  std::vector<float> host_;
};

}  // namespace rt
