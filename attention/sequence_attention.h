// SequenceAttention: exact causal attention over one sequence's local tokens, optionally inside documents (local here;
// the ring in parallel/ring_attention.h; a KV cache for decoding in attention/kv_cache_attention.h).
#pragma once
#include <memory>

#include "core/backend.h"

namespace rt {

class SequenceAttention {
 public:
  virtual ~SequenceAttention() = default;
  // q (T,Hq,D), k, v (T,Hk,D) -> o (T,Hq,D), lse (Hq,T). Causal in global token order. doc_start (T) i32: the global
  // position where each local token's document starts (packed documents: a token attends only inside its own);
  // undefined: the sequence is one document.
  virtual void forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& doc_start, Tensor& o,
                       Tensor& lse) = 0;
  // Gradients of the inputs, overwritten: dq (T,Hq,D), dk, dv (T,Hk,D).
  virtual void backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& doc_start, const Tensor& o,
                        const Tensor& lse, const Tensor& dout, Tensor& dq, Tensor& dk, Tensor& dv) = 0;
};

// Which kernels compute attention: flash (tiled, O(T*D) memory; the default) or the reference (one block of
// scores at a time; kept for tests and before/after benchmarks).
enum class AttentionKernel { flash, reference };

// The whole sequence is on this process: one kernel call with the causal mask at offset 0. precision bf16: the
// flash kernels round their tile inputs to bf16 (AttentionProblem::bf16_inputs).
std::unique_ptr<SequenceAttention> local_attention_make(Backend& backend,
                                                        AttentionKernel kernel = AttentionKernel::flash,
                                                        Precision precision = Precision::fp32);

}  // namespace rt
