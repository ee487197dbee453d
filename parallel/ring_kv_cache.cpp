// RingKvCacheAttention: the ring prefill into per-rank K/V shards, and decode steps merged across ranks by LSE.
#include "parallel/ring_kv_cache.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "attention/attention_ops.h"
#include "core/check.h"
#include "parallel/ring_attention.h"

namespace rt {

RingKvCacheAttention::RingKvCacheAttention(Communicator& cp_group, Backend& backend, int64_t layers,
                                           int64_t prompt_tokens, int64_t max_new_tokens, int64_t kv_heads,
                                           int64_t head_dim, Sharding sharding, Precision precision)
    : comm_(cp_group),
      backend_(backend),
      ops_(attention_ops_for(backend.device())),
      layers_(layers),
      prompt_(prompt_tokens),
      padded_(sharded_length(prompt_tokens, cp_group.size(), sharding)) {
  const int cp = comm_.size();
  RT_CHECK(layers >= 1 && prompt_tokens >= 1 && max_new_tokens >= 0, "ring KV cache arguments");
  ring_ = std::make_unique<RingAttention>(comm_, backend, padded_, sharding, true, precision);
  chunks_ = shard_chunks(padded_, cp, comm_.rank(), sharding);
  int64_t real = 0;
  for (const Chunk& c : chunks_) real += std::clamp<int64_t>(prompt_ - c.start, 0, c.length);
  capacity_ = std::max<int64_t>(1, real + (max_new_tokens + cp - 1) / cp);
  for (int64_t l = 0; l < layers; ++l) {
    k_.push_back(backend.alloc({capacity_, kv_heads, head_dim}));
    v_.push_back(backend.alloc({capacity_, kv_heads, head_dim}));
  }
}

RingKvCacheAttention::~RingKvCacheAttention() = default;

void RingKvCacheAttention::forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& doc_start,
                                   Tensor& o, Tensor& lse) {
  RT_CHECK(!doc_start.defined(), "the KV cache holds one document");
  if (!prefilled_) {
    ring_->forward(q, k, v, doc_start, o, lse);
    int64_t row = 0, cached = 0;  // this rank's rows of the padded prompt; of them kept (the real tokens)
    for (const Chunk& c : chunks_) {
      const int64_t real = std::clamp<int64_t>(prompt_ - c.start, 0, c.length);
      if (real > 0) {
        Tensor kc = k_[layer_].rows(cached, cached + real), vc = v_[layer_].rows(cached, cached + real);
        backend_.copy(k.rows(row, row + real), kc);
        backend_.copy(v.rows(row, row + real), vc);
      }
      row += c.length, cached += real;
    }
    if (++layer_ == layers_) layer_ = 0, prefilled_ = true, local_ = cached, length_ = prompt_;
    return;
  }
  const int64_t Hq = q.dim(1), Hk = k.dim(1), D = q.dim(2);
  RT_CHECK(q.dim(0) == 1, "a decode step feeds one token, got " + std::to_string(q.dim(0)));
  const bool mine = length_ % comm_.size() == comm_.rank();  // the new token's K/V join this rank's cache
  const int64_t n = local_ + (mine ? 1 : 0);
  RT_CHECK(n <= capacity_,
           "ring KV cache: " + std::to_string(n) + " tokens exceed its capacity " + std::to_string(capacity_));
  if (mine) {
    Tensor kc = k_[layer_].rows(local_, n), vc = v_[layer_].rows(local_, n);
    backend_.copy(k, kc);
    backend_.copy(v, vc);
  }
  if (n > 0) {
    const AttentionProblem p{1, n, Hq, Hk, D, true, n - 1, 0, 1.0f / std::sqrt(static_cast<float>(D))};
    ops_.decode(p, q.f32(), k_[layer_].f32(), v_[layer_].f32(), o.f32(), lse.f32());
  }
  merge(o, lse, Hq, D, n > 0);  // a rank with an empty cache contributes weight 0
  if (++layer_ == layers_) layer_ = 0, local_ = n, length_ += 1;
}

void RingKvCacheAttention::merge(Tensor& o, Tensor& lse, int64_t Hq, int64_t D, bool attended) {
  const int cp = comm_.size();
  const int64_t row = Hq * D + Hq;
  if (!gathered_.defined()) gathered_ = backend_.alloc({cp, row});
  host_.assign(static_cast<size_t>(cp * row), 0.f);
  float* mine = host_.data() + comm_.rank() * row;
  if (attended) {
    backend_.download(o, mine);
    backend_.download(lse, mine + Hq * D);
  } else {
    std::fill(mine + Hq * D, mine + row, -std::numeric_limits<float>::infinity());
  }
  backend_.upload(host_.data(), gathered_);
  comm_.all_reduce_sum(gathered_);  // each row holds one rank's values, zeros elsewhere: an all-gather
  backend_.download(gathered_, host_.data());
  std::vector<float> out(static_cast<size_t>(Hq * D)), out_lse(static_cast<size_t>(Hq));
  std::vector<double> acc(static_cast<size_t>(D));
  for (int64_t h = 0; h < Hq; ++h) {
    double m = -std::numeric_limits<double>::infinity();
    for (int r = 0; r < cp; ++r) m = std::max(m, static_cast<double>(host_[r * row + Hq * D + h]));
    double total = 0;
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int r = 0; r < cp && std::isfinite(m); ++r) {
      const double w = std::exp(static_cast<double>(host_[r * row + Hq * D + h]) - m);
      total += w;
      for (int64_t d = 0; d < D; ++d) acc[d] += w * host_[r * row + h * D + d];
    }
    for (int64_t d = 0; d < D; ++d) out[h * D + d] = total > 0 ? static_cast<float>(acc[d] / total) : 0.f;
    out_lse[h] = total > 0 ? static_cast<float>(m + std::log(total)) : -std::numeric_limits<float>::infinity();
  }
  backend_.upload(out.data(), o);
  backend_.upload(out_lse.data(), lse);
}

void RingKvCacheAttention::backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                    const Tensor&, const Tensor&, Tensor&, Tensor&, Tensor&) {
  RT_CHECK(false, "RingKvCacheAttention has no backward: decoding does not train");
}

}  // namespace rt
