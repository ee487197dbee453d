// The multi-head causal attention layer: Q/K/V projections, RoPE at global positions, GQA, output projection.
#pragma once
#include "attention/sequence_attention.h"
#include "core/backend.h"

namespace rt {

struct AttentionShape {
  int64_t hidden = 0, heads = 0, kv_heads = 0, head_dim = 0;
  RopeParams rope;
};

// Weights (views into the model's parameters), nn.Linear layout (out, in):
//   wq (Hq*D, C), wk (Hk*D, C), wv (Hk*D, C), wo (C, Hq*D).
struct AttentionWeights {
  Tensor wq, wk, wv, wo;
};

// What one forward keeps for the backward, for B sequences of T local tokens (N = B*T):
//   q (N,Hq,D) and k (N,Hk,D) after RoPE, v (N,Hk,D), o (N,Hq,D) before wo, lse (B,Hq,T).
struct AttentionActivations {
  Tensor q, k, v, o, lse;
};

class AttentionLayer {
 public:
  // precision: of the four projections' GEMMs, forward and backward (attention itself is the SequenceAttention's).
  AttentionLayer(Backend& backend, SequenceAttention& attention, AttentionShape shape,
                 Precision precision = Precision::fp32);

  AttentionActivations activations_alloc(int64_t batch, int64_t seq) const;

  // h (N,C), pos (N) i32 RoPE positions; out (N,C) += attention(h) @ wo^T (out holds the residual). doc_start (N) i32:
  // per token, the position in its sequence where its document starts (SequenceAttention); undefined: one document.
  void forward(const AttentionWeights& w, const Tensor& h, const Tensor& pos, const Tensor& doc_start, int64_t batch,
               AttentionActivations& a, Tensor& out);

  // dout (N,C) is the gradient at out. Weight gradients accumulate into g (+=); dh (N,C) is overwritten.
  void backward(const AttentionWeights& w, AttentionWeights& g, const Tensor& h, const Tensor& pos,
                const Tensor& doc_start, int64_t batch, AttentionActivations& a, const Tensor& dout, Tensor& dh);

 private:
  Backend& backend_;
  SequenceAttention& attention_;
  AttentionShape shape_;
  Precision precision_;
  Tensor d_o_, dq_, dk_, dv_;  // backward workspace, grown on demand
};

}  // namespace rt
