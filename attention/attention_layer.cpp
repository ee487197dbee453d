// The multi-head causal attention layer, written once against the Backend and a SequenceAttention.
#include "attention/attention_layer.h"

#include "core/check.h"

namespace rt {

AttentionLayer::AttentionLayer(Backend& backend, SequenceAttention& attention, AttentionShape shape,
                               Precision precision)
    : backend_(backend), attention_(attention), shape_(shape), precision_(precision) {
  RT_CHECK(shape.heads % shape.kv_heads == 0 && shape.head_dim % 2 == 0, "attention layer shape");
}

AttentionActivations AttentionLayer::activations_alloc(int64_t batch, int64_t seq) const {
  const int64_t n = batch * seq, hq = shape_.heads, hk = shape_.kv_heads, d = shape_.head_dim;
  return {backend_.alloc({n, hq, d}), backend_.alloc({n, hk, d}), backend_.alloc({n, hk, d}),
          backend_.alloc({n, hq, d}), backend_.alloc({batch, hq, seq})};
}

namespace {

// Rows [r0, r1) of doc_start, or undefined where it is (one document per sequence).
Tensor doc_rows(const Tensor& doc_start, int64_t r0, int64_t r1) {
  return doc_start.defined() ? doc_start.rows(r0, r1) : Tensor{};
}

}  // namespace

void AttentionLayer::forward(const AttentionWeights& w, const Tensor& h, const Tensor& pos, const Tensor& doc_start,
                             int64_t batch, AttentionActivations& a, Tensor& out) {
  const int64_t n = h.dim(0), seq = n / batch;
  RT_CHECK(seq * batch == n && a.q.dim(0) == n, "attention forward: " + h.shape_string() + " for batch " + std::to_string(batch));
  backend_.gemm(precision_, h, false, w.wq, true, a.q, 1.f, 0.f);  // q (N, Hq*D) = h @ wq^T
  backend_.gemm(precision_, h, false, w.wk, true, a.k, 1.f, 0.f);
  backend_.gemm(precision_, h, false, w.wv, true, a.v, 1.f, 0.f);
  backend_.rope_forward(a.q, pos, shape_.rope);
  backend_.rope_forward(a.k, pos, shape_.rope);
  for (int64_t b = 0; b < batch; ++b) {
    Tensor ob = a.o.rows(b * seq, (b + 1) * seq), lb = a.lse.rows(b, b + 1);
    attention_.forward(a.q.rows(b * seq, (b + 1) * seq), a.k.rows(b * seq, (b + 1) * seq),
                       a.v.rows(b * seq, (b + 1) * seq), doc_rows(doc_start, b * seq, (b + 1) * seq), ob, lb);
  }
  Tensor o2 = a.o.reshape({n, shape_.heads * shape_.head_dim});
  backend_.gemm(precision_, o2, false, w.wo, true, out, 1.f, 1.f);  // out (N, C) += o @ wo^T
}

void AttentionLayer::backward(const AttentionWeights& w, AttentionWeights& g, const Tensor& h, const Tensor& pos,
                              const Tensor& doc_start, int64_t batch, AttentionActivations& a, const Tensor& dout,
                              Tensor& dh) {
  const int64_t n = h.dim(0), seq = n / batch, hq = shape_.heads, hk = shape_.kv_heads, d = shape_.head_dim;
  if (!d_o_.defined() || d_o_.dim(0) < n) {
    d_o_ = backend_.alloc({n, hq, d});
    dq_ = backend_.alloc({n, hq, d});
    dk_ = backend_.alloc({n, hk, d});
    dv_ = backend_.alloc({n, hk, d});
  }
  Tensor d_o = d_o_.rows(0, n), dq = dq_.rows(0, n), dk = dk_.rows(0, n), dv = dv_.rows(0, n);
  // out = o @ wo^T: d_o = dout @ wo, dwo += dout^T @ o
  backend_.gemm(precision_, dout, false, w.wo, false, d_o, 1.f, 0.f);
  backend_.gemm(precision_, dout, true, a.o, false, g.wo, 1.f, 1.f);
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t r0 = b * seq, r1 = (b + 1) * seq;
    Tensor dqb = dq.rows(r0, r1), dkb = dk.rows(r0, r1), dvb = dv.rows(r0, r1);
    attention_.backward(a.q.rows(r0, r1), a.k.rows(r0, r1), a.v.rows(r0, r1), doc_rows(doc_start, r0, r1),
                        a.o.rows(r0, r1), a.lse.rows(b, b + 1), d_o.rows(r0, r1), dqb, dkb, dvb);
  }
  backend_.rope_backward(dq, pos, shape_.rope);
  backend_.rope_backward(dk, pos, shape_.rope);
  // q = h @ wq^T etc: dh = dq @ wq + dk @ wk + dv @ wv, dwq += dq^T @ h ...
  backend_.gemm(precision_, dq, false, w.wq, false, dh, 1.f, 0.f);
  backend_.gemm(precision_, dk, false, w.wk, false, dh, 1.f, 1.f);
  backend_.gemm(precision_, dv, false, w.wv, false, dh, 1.f, 1.f);
  backend_.gemm(precision_, dq, true, h, false, g.wq, 1.f, 1.f);
  backend_.gemm(precision_, dk, true, h, false, g.wk, 1.f, 1.f);
  backend_.gemm(precision_, dv, true, h, false, g.wv, 1.f, 1.f);
}

}  // namespace rt
