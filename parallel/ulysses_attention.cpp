// Ulysses attention: the head all-to-alls around an inner attention over the gathered rows.
//
// Letters: U ranks in the Ulysses group, u a rank of it, T this rank's tokens, R = U*T the gathered rows, Hq / Hk the
// query / K/V heads of the layer, q / kv the heads each rank computes (UlyssesHeads), D the head dim.
#include "parallel/ulysses_attention.h"

#include <string>
#include <utility>

#include "core/check.h"
#include "core/timer.h"
#include "parallel/ring_attention.h"

namespace rt {

std::string ulysses_heads_problem(int64_t q_heads, int64_t kv_heads, int64_t ulysses) {
  const std::string u = std::to_string(ulysses), hq = std::to_string(q_heads), hk = std::to_string(kv_heads);
  if (q_heads % ulysses != 0)
    return "parallel.ulysses = " + u + " does not divide model.num_attention_heads = " + hq +
           "; valid: a divisor of the query heads";
  if (ulysses <= kv_heads ? kv_heads % ulysses != 0 : ulysses % kv_heads != 0)
    return "parallel.ulysses = " + u + " and model.num_key_value_heads = " + hk +
           ": each rank's query heads must read whole K/V heads of their own, so ulysses must divide the K/V heads "
           "(split them) or be a multiple of them (repeat each); valid: a divisor of " +
           hq + " that divides " + hk + " or is a multiple of it";
  return "";
}

UlyssesHeads ulysses_heads(int64_t q_heads, int64_t kv_heads, int ulysses) {
  const std::string problem = ulysses_heads_problem(q_heads, kv_heads, ulysses);
  RT_CHECK(problem.empty(), problem);
  UlyssesHeads h;
  h.q = q_heads / ulysses;
  h.kv = ulysses <= kv_heads ? kv_heads / ulysses : 1;
  h.copies = ulysses <= kv_heads ? 1 : ulysses / kv_heads;
  return h;
}

UlyssesAttention::UlyssesAttention(Communicator& ulysses_group, Backend& backend,
                                   std::unique_ptr<SequenceAttention> inner)
    : comm_(ulysses_group),
      backend_(backend),
      inner_(std::move(inner)),
      rank_(ulysses_group.rank()),
      size_(ulysses_group.size()) {}

// A view of the slot's buffer, which grows to the largest shape asked of it (the send and receive slots serve tensors
// of several shapes per call).
Tensor UlyssesAttention::scratch(Slot slot, std::vector<int64_t> shape, DType dtype) {
  Tensor& t = scratch_[slot];
  const int64_t n = shape_numel(shape);
  if (!t.defined() || t.numel() < n || t.dtype() != dtype) t = backend_.alloc({n}, dtype);
  return t.slice(0, std::move(shape));
}

void UlyssesAttention::exchange(const Tensor& send, Tensor& recv) {
  Timer timer;
  comm_.all_to_all(send, recv);
  stats_.all_to_all_s += timer.seconds();
  stats_.bytes_sent += static_cast<int64_t>(send.bytes()) / size_ * (size_ - 1);
}

void UlyssesAttention::heads_for(const Tensor& q, const Tensor& k) {
  RT_CHECK(q.rank() == 3 && k.rank() == 3 && q.dim(0) == k.dim(0) && q.dim(2) == k.dim(2),
           "Ulysses attention of q " + q.shape_string() + " and k " + k.shape_string());
  if (q.dim(1) == q_heads_ && k.dim(1) == kv_heads_) return;
  q_heads_ = q.dim(1);
  kv_heads_ = k.dim(1);
  heads_ = ulysses_heads(q_heads_, kv_heads_, size_);
}

// send (U, T, n, D): block u = x's heads for rank u; the all-to-all lands every rank's block for us in rank order.
void UlyssesAttention::gather_heads(const Tensor& x, int64_t n, bool kv, Slot out_slot, Tensor& out) {
  const int64_t T = x.dim(0), H = x.dim(1), D = x.dim(2), block = T * n * D;
  Tensor send = scratch(kSend, {size_, T, n, D});
  const Tensor x2 = x.reshape({T, H * D});
  for (int u = 0; u < size_; ++u) {
    const int64_t first = kv ? heads_.kv_first(u, size_, kv_heads_) : u * heads_.q;
    Tensor dst = send.slice(u * block, {T, n * D});
    backend_.copy_columns(x2, first * D, dst, 0, T, n * D);
  }
  out = scratch(out_slot, {size_ * T, n, D});
  exchange(send, out);
}

// y's row block u (T, n, D) belongs to rank u's tokens: it goes there as is; what arrives from rank u is our tokens'
// heads of rank u, placed (or summed, for repeated K/V heads) at its head range.
void UlyssesAttention::scatter_heads(const Tensor& y, bool kv, Tensor& x) {
  const int64_t T = x.dim(0), H = x.dim(1), D = x.dim(2), n = y.dim(1), block = T * n * D;
  Tensor recv = scratch(kRecv, {size_, T, n, D});
  exchange(y, recv);
  const bool add = kv && heads_.copies > 1;
  if (add) backend_.fill(x, 0.0f);
  Tensor x2 = x.reshape({T, H * D});
  for (int u = 0; u < size_; ++u) {
    const int64_t first = kv ? heads_.kv_first(u, size_, kv_heads_) : u * heads_.q;
    backend_.copy_columns(recv.slice(u * block, {T, n * D}), 0, x2, first * D, T, n * D, add);
  }
}

// Every rank's doc_start (T) in rank order (R): the same block to every rank.
Tensor UlyssesAttention::gather_doc_start(const Tensor& doc_start) {
  if (!doc_start.defined()) return {};
  const int64_t T = doc_start.numel();
  Tensor send = scratch(kDocSend, {size_, T}, DType::i32);
  for (int u = 0; u < size_; ++u) {
    Tensor dst = send.slice(u * T, {T});
    backend_.copy(doc_start, dst);
  }
  Tensor all = scratch(kDoc, {size_ * T}, DType::i32);
  exchange(send, all);
  return all;
}

// (Hq, T) -> (q, R): rows u*q .. of ours are rank u's heads, contiguous; what arrives from rank u (q, T) is its
// tokens' columns [u*T, (u+1)*T).
void UlyssesAttention::lse_to_heads(const Tensor& lse_tokens, Tensor& lse_heads) {
  const int64_t T = lse_tokens.dim(1), q = heads_.q;
  Tensor recv = scratch(kRecv, {size_, q, T});
  exchange(lse_tokens, recv);
  lse_heads = scratch(kLse, {q, size_ * T});
  for (int u = 0; u < size_; ++u) backend_.copy_columns(recv.slice(u * q * T, {q, T}), 0, lse_heads, u * T, q, T);
}

// (q, R) -> (Hq, T): columns [u*T, (u+1)*T) go to rank u; from rank u come the rows u*q .. of ours.
void UlyssesAttention::lse_to_tokens(const Tensor& lse_heads, Tensor& lse_tokens) {
  const int64_t T = lse_tokens.dim(1), q = heads_.q;
  Tensor send = scratch(kSend, {size_, q, T});
  for (int u = 0; u < size_; ++u) {
    Tensor dst = send.slice(u * q * T, {q, T});
    backend_.copy_columns(lse_heads, u * T, dst, 0, q, T);
  }
  exchange(send, lse_tokens);
}

void UlyssesAttention::forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& doc_start, Tensor& o,
                               Tensor& lse) {
  heads_for(q, k);
  const int64_t T = q.dim(0), D = q.dim(2);
  RT_CHECK(lse.numel() == q_heads_ * T, "Ulysses attention lse " + lse.shape_string());
  Tensor doc = gather_doc_start(doc_start), qg, kg, vg;
  gather_heads(q, heads_.q, false, kQ, qg);
  gather_heads(k, heads_.kv, true, kK, kg);
  gather_heads(v, heads_.kv, true, kV, vg);
  Tensor og = scratch(kO, {size_ * T, heads_.q, D}), lseg = scratch(kLse, {heads_.q, size_ * T});
  inner_->forward(qg, kg, vg, doc, og, lseg);
  scatter_heads(og, false, o);
  Tensor lse2 = lse.reshape({q_heads_, T});
  lse_to_tokens(lseg, lse2);
}

void UlyssesAttention::backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& doc_start,
                                const Tensor& o, const Tensor& lse, const Tensor& dout, Tensor& dq, Tensor& dk,
                                Tensor& dv) {
  heads_for(q, k);
  const int64_t T = q.dim(0), D = q.dim(2);
  Tensor doc = gather_doc_start(doc_start), qg, kg, vg, og, dog, lseg;
  gather_heads(q, heads_.q, false, kQ, qg);
  gather_heads(k, heads_.kv, true, kK, kg);
  gather_heads(v, heads_.kv, true, kV, vg);
  gather_heads(o, heads_.q, false, kO, og);
  gather_heads(dout, heads_.q, false, kDout, dog);
  lse_to_heads(lse.reshape({q_heads_, T}), lseg);
  Tensor dqg = scratch(kDq, {size_ * T, heads_.q, D});
  Tensor dkg = scratch(kDk, {size_ * T, heads_.kv, D}), dvg = scratch(kDv, {size_ * T, heads_.kv, D});
  inner_->backward(qg, kg, vg, doc, og, lseg, dog, dqg, dkg, dvg);
  scatter_heads(dqg, false, dq);
  scatter_heads(dkg, true, dk);
  scatter_heads(dvg, true, dv);
}

std::unique_ptr<SequenceAttention> layout_attention_make(Communicator& cp_group, Communicator& ulysses_group,
                                                         Backend& backend, int64_t seq_len, Sharding sharding,
                                                         bool causal, Precision precision) {
  std::unique_ptr<SequenceAttention> a;
  if (cp_group.size() > 1 || !causal)
    a = std::make_unique<RingAttention>(cp_group, backend, seq_len, sharding, causal, precision);
  else
    a = local_attention_make(backend, AttentionKernel::flash, precision);
  if (ulysses_group.size() > 1) a = std::make_unique<UlyssesAttention>(ulysses_group, backend, std::move(a));
  return a;
}

}  // namespace rt
