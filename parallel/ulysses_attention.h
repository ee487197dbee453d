// Ulysses attention (DeepSpeed-Ulysses): a sequence spread over the ranks of a Ulysses group, attention by heads.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "attention/sequence_attention.h"
#include "parallel/communicator.h"
#include "parallel/sharding.h"

namespace rt {

// How U Ulysses ranks share Hq query heads and Hk K/V heads: each rank takes q = Hq / U query heads and kv K/V heads,
// rank u those from head u * Hk / U (integer division) on. U <= Hk: the K/V heads are split (kv = Hk / U, copies 1);
// U > Hk: each rank takes the one K/V head its query heads read, and each K/V head sits on copies = U / Hk ranks.
struct UlyssesHeads {
  int64_t q = 0, kv = 0, copies = 1;
  int64_t kv_first(int u, int ulysses, int64_t kv_heads) const { return u * kv_heads / ulysses; }
};

// "" when U ranks can share the heads, else one sentence naming parallel.ulysses and what is valid: U must divide Hq,
// and U divide Hk (U <= Hk) or Hk divide U (U > Hk), so that each rank's query heads read only its own K/V heads.
std::string ulysses_heads_problem(int64_t q_heads, int64_t kv_heads, int64_t ulysses);
UlyssesHeads ulysses_heads(int64_t q_heads, int64_t kv_heads, int ulysses);  // RT_CHECKs ulysses_heads_problem

// Before attention an all-to-all over the group turns each rank's (T tokens, all heads) into (U*T tokens, its heads):
// the rows of the group's ranks in rank order (sharding.h: shard_chunks with ulysses); `inner` computes attention on
// those rows (the local kernels when the Ulysses group holds the whole sequence, the ring across the groups in the 2-D
// layout); a second all-to-all returns the output (and LSE) to the tokens' ranks. The backward gathers again what it
// reads, and returns dQ, dK, dV the same way, summing the copies' dK/dV of a K/V head held by several ranks in rank
// order (deterministic). Traffic is fp32.
class UlyssesAttention final : public SequenceAttention {
 public:
  UlyssesAttention(Communicator& ulysses_group, Backend& backend, std::unique_ptr<SequenceAttention> inner);

  // q (T,Hq,D), k, v (T,Hk,D): this rank's tokens -> o (T,Hq,D), lse (Hq,T). doc_start (T) as SequenceAttention.
  void forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& doc_start, Tensor& o,
               Tensor& lse) override;
  void backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& doc_start, const Tensor& o,
                const Tensor& lse, const Tensor& dout, Tensor& dq, Tensor& dk, Tensor& dv) override;

  SequenceAttention& inner() { return *inner_; }

  // Seconds in the all-to-alls (on the GPU: to queue them) and the bytes this rank sent to other ranks, since
  // construction.
  struct Stats {
    double all_to_all_s = 0;
    int64_t bytes_sent = 0;
  };
  const Stats& stats() const { return stats_; }
  void stats_reset() { stats_ = {}; }

 private:
  enum Slot { kSend, kRecv, kDocSend, kDoc, kQ, kK, kV, kO, kLse, kDout, kDq, kDk, kDv, kSlots };
  Tensor scratch(Slot slot, std::vector<int64_t> shape, DType dtype = DType::f32);
  void exchange(const Tensor& send, Tensor& recv);
  // x (T,H,D) -> out (U*T, n, D): rank u receives heads [first(u), first(u) + n) of every rank's tokens.
  void gather_heads(const Tensor& x, int64_t n, bool kv, Slot out_slot, Tensor& out);
  // y (U*T, n, D) -> x (T,H,D): rank u's heads come back to their tokens' ranks; repeated K/V heads (kv, copies > 1)
  // are summed into x, zeroed first.
  void scatter_heads(const Tensor& y, bool kv, Tensor& x);
  Tensor gather_doc_start(const Tensor& doc_start);
  void lse_to_heads(const Tensor& lse_tokens, Tensor& lse_heads);   // (Hq, T) -> (q, U*T)
  void lse_to_tokens(const Tensor& lse_heads, Tensor& lse_tokens);  // (q, U*T) -> (Hq, T)
  void heads_for(const Tensor& q, const Tensor& k);

  Communicator& comm_;
  Backend& backend_;
  std::unique_ptr<SequenceAttention> inner_;
  int rank_, size_;
  int64_t q_heads_ = 0, kv_heads_ = 0;  // of the calls' tensors
  UlyssesHeads heads_;
  Stats stats_;
  Tensor scratch_[kSlots];
};

// A layout's attention: the ring over cp_group when it has several ranks (or when not causal: the local kernels are
// causal only), else the local kernels; inside Ulysses over ulysses_group when that has several ranks. seq_len: the
// sharded length.
std::unique_ptr<SequenceAttention> layout_attention_make(Communicator& cp_group, Communicator& ulysses_group,
                                                         Backend& backend, int64_t seq_len, Sharding sharding,
                                                         bool causal = true, Precision precision = Precision::fp32);

}  // namespace rt
