// Local (single-process) sequence attention on the CPU: the whole sequence as one block pair.
#include <cmath>

#include "attention/attention_kernels.h"
#include "attention/sequence_attention.h"
#include "core/check.h"

namespace rt {
namespace {

AttentionProblem problem_of(const Tensor& q, const Tensor& k) {
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
  return p;
}

class LocalAttention final : public SequenceAttention {
 public:
  explicit LocalAttention(Backend& backend) : backend_(backend) {}

  void forward(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& o, Tensor& lse) override {
    AttentionProblem p = problem_of(q, k);
    attention_reference_forward(p, q.f32(), k.f32(), v.f32(), o.f32(), lse.f32());
  }

  void backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& o, const Tensor& lse,
                const Tensor& dout, Tensor& dq, Tensor& dk, Tensor& dv) override {
    AttentionProblem p = problem_of(q, k);
    backend_.fill(dq, 0.f);
    backend_.fill(dk, 0.f);
    backend_.fill(dv, 0.f);
    attention_reference_backward(p, q.f32(), k.f32(), v.f32(), o.f32(), dout.f32(), lse.f32(), dq.f32(), dk.f32(),
                                 dv.f32());
  }

 private:
  Backend& backend_;
};

}  // namespace

std::unique_ptr<SequenceAttention> local_attention_make(Backend& backend) {
  RT_CHECK(backend.device() == Device::cpu, "the CPU attention needs the CPU backend");
  return std::make_unique<LocalAttention>(backend);
}

}  // namespace rt
