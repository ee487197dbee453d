// KvCacheAttention: each layer's K/V appended to its cache, the new queries attended to the whole cache.
#include "attention/kv_cache_attention.h"

#include <cmath>

#include "attention/attention_ops.h"
#include "core/check.h"

namespace rt {

KvCacheAttention::KvCacheAttention(Backend& backend, int64_t layers, int64_t capacity, int64_t kv_heads,
                                   int64_t head_dim)
    : backend_(backend), ops_(attention_ops_for(backend.device())), layers_(layers), capacity_(capacity) {
  RT_CHECK(layers >= 1 && capacity >= 1,
           "KV cache of " + std::to_string(layers) + " layers x " + std::to_string(capacity) + " tokens");
  for (int64_t l = 0; l < layers; ++l) {
    k_.push_back(backend.alloc({capacity, kv_heads, head_dim}));
    v_.push_back(backend.alloc({capacity, kv_heads, head_dim}));
  }
}

void KvCacheAttention::forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& doc_start, Tensor& o,
                               Tensor& lse) {
  const int64_t T = q.dim(0), Hq = q.dim(1), Hk = k.dim(1), D = q.dim(2);
  RT_CHECK(!doc_start.defined(), "the KV cache holds one document");
  RT_CHECK(length_ + T <= capacity_, "KV cache: " + std::to_string(length_) + " + " + std::to_string(T) +
                                         " tokens exceed its capacity " + std::to_string(capacity_));
  Tensor kc = k_[layer_].rows(length_, length_ + T), vc = v_[layer_].rows(length_, length_ + T);
  backend_.copy(k, kc);
  backend_.copy(v, vc);
  AttentionProblem p{T, length_ + T, Hq, Hk, D, true, length_, 0, 1.0f / std::sqrt(static_cast<float>(D))};
  (T == 1 ? ops_.decode : ops_.forward)(p, q.f32(), k_[layer_].f32(), v_[layer_].f32(), o.f32(), lse.f32());
  if (++layer_ == layers_) layer_ = 0, length_ += T;
}

void KvCacheAttention::backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                const Tensor&, const Tensor&, Tensor&, Tensor&, Tensor&) {
  RT_CHECK(false, "KvCacheAttention has no backward: decoding does not train");
}

}  // namespace rt
