// Ring attention: exact causal attention over a sequence sharded across the ranks of a cp group.
#pragma once
#include <vector>

#include "attention/sequence_attention.h"
#include "parallel/communicator.h"
#include "parallel/sharding.h"

namespace rt {

struct AttentionOps;

// Each rank keeps its queries; key/value blocks travel around the ring (rank r sends to r+1), the next
// block's exchange posted before computing on the held one (in bf16 with bf16 precision: half the traffic). Partial
// (O, LSE) merge in fp32. Backward
// carries dK/dV (fp32) with their block and delivers them home after cp steps; dQ stays home. Runs on the backend's
// device with its attention kernels (attention_ops_for): CPU tensors over MPI, CUDA tensors over NCCL. On the GPU
// the work is queued on the compute stream, so stats() counts the time to queue it, not to run it.
class RingAttention final : public SequenceAttention {
 public:
  // precision bf16: the kernels round their tile inputs to bf16 (AttentionProblem::bf16_inputs); merges stay fp32.
  RingAttention(Communicator& cp_group, Backend& backend, int64_t seq_len, Sharding sharding, bool causal = true,
                Precision precision = Precision::fp32);

  // q (T,Hq,D), k, v (T,Hk,D): this rank's tokens (T = seq_len / cp) -> o (T,Hq,D), lse (Hq,T). doc_start (T):
  // document masking (SequenceAttention); a (query chunk, key chunk) product whose keys all lie before the documents
  // of its queries is skipped, while every block still travels the whole ring (the same exchanges on every rank).
  void forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& doc_start, Tensor& o,
               Tensor& lse) override;
  void backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& doc_start, const Tensor& o,
                const Tensor& lse, const Tensor& dout, Tensor& dq, Tensor& dk, Tensor& dv) override;

  // Seconds spent computing (kernels and merges); blocked in the waits of exchanges that were posted before some
  // compute (each should be ~0: the exchange ran during that compute); and blocked in the one wait that cannot
  // overlap anything, the final delivery of this rank's dK/dV (it includes the other ranks' lag), since construction.
  // Forward block products: those the causal mask leaves, and how many of them document masking skipped. Bytes this
  // rank sent to its ring neighbour: K/V blocks (forward and backward) and travelling dK/dV.
  struct Stats {
    double compute_s = 0, wait_s = 0, delivery_wait_s = 0;
    int64_t block_pairs = 0, block_pairs_skipped = 0;
    int64_t bytes_sent = 0;
  };
  const Stats& stats() const { return stats_; }
  void stats_reset() { stats_ = {}; }

 private:
  struct Pair;  // a (query chunk, key chunk) product to compute at one step
  // The products of ring step `step`; with document masking (doc_first: per local query chunk, the smallest document
  // start of its queries) those with a visible key only. skipped: += the products document masking removed.
  std::vector<Pair> pairs_at_step(int step, const std::vector<int64_t>& doc_first, int64_t* skipped = nullptr) const;
  // doc_first of pairs_at_step for this rank's doc_start (T), empty when it is undefined.
  std::vector<int64_t> doc_first_of(const Tensor& doc_start);
  // Buffers kept across calls (every layer calls forward and backward with the same shapes): allocating them per
  // call costs a page fault and a page clear per 4 KiB. Contents are undefined on return.
  enum Slot { kHeld, kNext, kHeldF32, kBlockO, kBlockLse, kDelta, kGrad0, kGrad1, kArrived0, kArrived1, kSlots };
  Tensor scratch(Slot slot, std::vector<int64_t> shape, DType dtype = DType::f32);
  void kv_blocks_make(const Tensor& k, const Tensor& v, Tensor& held, Tensor& next);
  const float* kv_block_f32(const Tensor& held);

  Communicator& comm_;
  Backend& backend_;
  int64_t seq_len_;
  Sharding sharding_;
  bool causal_;
  bool bf16_;
  int rank_, size_;
  const AttentionOps& ops_;
  Stats stats_;
  Tensor scratch_[kSlots];
};

}  // namespace rt
