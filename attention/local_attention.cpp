// Local (single-process) sequence attention: the whole sequence as one block pair, on the backend's device.
#include <cmath>

#include "attention/attention_kernels.h"
#include "attention/attention_ops.h"
#include "attention/sequence_attention.h"
#include "core/check.h"

namespace rt {
namespace {

AttentionProblem problem_of(const Tensor& q, const Tensor& k, const Tensor& doc_start) {
  RT_CHECK(q.rank() == 3 && k.rank() == 3 && q.dim(0) == k.dim(0) && q.dim(2) == k.dim(2),
           "attention shapes q " + q.shape_string() + " k " + k.shape_string());
  AttentionProblem p;
  p.Tq = q.dim(0);
  p.Tk = k.dim(0);
  p.Hq = q.dim(1);
  p.Hk = k.dim(1);
  p.D = q.dim(2);
  p.causal = true;
  p.scale = 1.0f / std::sqrt(static_cast<float>(p.D));
  if (doc_start.defined()) {
    RT_CHECK(doc_start.dtype() == DType::i32 && doc_start.numel() == p.Tq, "doc_start " + doc_start.shape_string());
    p.q_doc_start = doc_start.i32();
  }
  return p;
}

class LocalAttention final : public SequenceAttention {
 public:
  LocalAttention(Backend& backend, AttentionKernel kernel, bool bf16)
      : backend_(backend), kernel_(kernel), bf16_(bf16), ops_(attention_ops_for(backend.device())) {}

  void forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& doc_start, Tensor& o,
               Tensor& lse) override {
    AttentionProblem p = problem_of(q, k, doc_start);
    p.bf16_inputs = bf16_;
    if (kernel_ == AttentionKernel::reference)
      attention_reference_forward(p, q.f32(), k.f32(), v.f32(), o.f32(), lse.f32());
    else
      ops_.forward(p, q.f32(), k.f32(), v.f32(), o.f32(), lse.f32());
  }

  void backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& doc_start, const Tensor& o,
                const Tensor& lse, const Tensor& dout, Tensor& dq, Tensor& dk, Tensor& dv) override {
    AttentionProblem p = problem_of(q, k, doc_start);
    p.bf16_inputs = bf16_;
    backend_.fill(dq, 0.f);
    backend_.fill(dk, 0.f);
    backend_.fill(dv, 0.f);
    if (kernel_ == AttentionKernel::reference) {
      attention_reference_backward(p, q.f32(), k.f32(), v.f32(), o.f32(), dout.f32(), lse.f32(), dq.f32(), dk.f32(),
                                   dv.f32());
      return;
    }
    if (!delta_.defined() || delta_.numel() < p.Hq * p.Tq) delta_ = backend_.alloc({p.Hq, p.Tq});
    ops_.delta(p, o.f32(), dout.f32(), delta_.f32());
    ops_.backward(p, q.f32(), k.f32(), v.f32(), dout.f32(), lse.f32(), delta_.f32(), dq.f32(), dk.f32(), dv.f32());
  }

 private:
  Backend& backend_;
  AttentionKernel kernel_;
  bool bf16_;                // the flash kernels round their tile inputs to bf16
  const AttentionOps& ops_;  // the flash kernels of the backend's device
  Tensor delta_;  // (Hq, T) rowsum(dout * o), grown on demand
};

}  // namespace

std::unique_ptr<SequenceAttention> local_attention_make(Backend& backend, AttentionKernel kernel, Precision precision) {
  RT_CHECK(backend.device() == Device::cpu || kernel == AttentionKernel::flash,
           "the reference attention kernels run on the CPU backend only");
  return std::make_unique<LocalAttention>(backend, kernel, precision == Precision::bf16);
}

}  // namespace rt
