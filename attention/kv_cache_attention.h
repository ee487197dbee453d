// KvCacheAttention: causal attention of new tokens against every earlier token of one sequence, whose keys and values
// each layer keeps in a cache (autoregressive decoding: a prefill of the prompt, then one token at a time).
#pragma once
#include <vector>

#include "attention/sequence_attention.h"

namespace rt {

struct AttentionOps;

// The model calls forward once per layer, in layer order, for each chunk of new tokens: layer l's call appends the
// chunk's K and V to cache l and attends its queries to all of it (one new token: the device's decode kernel, split
// over key blocks). After the last layer's call the cache holds the chunk and length() grows. One sequence, one
// rank; the backward is not defined (no training through a cache).
class KvCacheAttention final : public SequenceAttention {
 public:
  // capacity: the most tokens the cache holds; k/v: (capacity, Hk, D) per layer, allocated here.
  KvCacheAttention(Backend& backend, int64_t layers, int64_t capacity, int64_t kv_heads, int64_t head_dim);

  // q (T,Hq,D), k, v (T,Hk,D): the new tokens, at positions length() .. length() + T - 1.
  void forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& doc_start, Tensor& o,
               Tensor& lse) override;
  void backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& doc_start, const Tensor& o,
                const Tensor& lse, const Tensor& dout, Tensor& dq, Tensor& dk, Tensor& dv) override;

  int64_t length() const { return length_; }  // tokens cached in every layer
  int64_t capacity() const { return capacity_; }
  void clear() { length_ = 0, layer_ = 0; }

 private:
  Backend& backend_;
  const AttentionOps& ops_;
  int64_t layers_, capacity_, length_ = 0;
  int64_t layer_ = 0;  // the layer whose call comes next
  std::vector<Tensor> k_, v_;
};

}  // namespace rt
