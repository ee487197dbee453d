// The Backend op table: every op the model needs, over tensors, implemented once per device.
#pragma once
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "core/rope.h"
#include "core/tensor.h"

namespace rt {

// One AdamW update with decoupled weight decay (Loshchilov & Hutter). grad_scale folds in clipping
// and loss scaling: the gradient used is grad * grad_scale.
struct AdamWStep {
  float lr = 0, beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f, weight_decay = 0, grad_scale = 1;
  int64_t step = 1;  // 1-based, for bias correction

  // The per-step scalars every device uses alike: p = p * decay - step_size * m / (sqrt(v) * inv_sqrt_bc2 + eps),
  // with the bias corrections bc = 1 - beta^step computed in double.
  struct Scalars {
    float step_size, inv_sqrt_bc2, decay;
  };
  Scalars scalars() const {
    const float bc1 = 1.0f - static_cast<float>(std::pow(static_cast<double>(beta1), static_cast<double>(step)));
    const float bc2 = 1.0f - static_cast<float>(std::pow(static_cast<double>(beta2), static_cast<double>(step)));
    return {lr / bc1, 1.0f / std::sqrt(bc2), 1.0f - lr * weight_decay};
  }
};

// The precision of a GEMM's products: fp32, or bf16 (inputs rounded to bfloat16, nearest even; products and sums
// in fp32, the result fp32), as PyTorch's bf16 autocast runs a linear layer.
enum class Precision { fp32, bf16 };
inline const char* precision_name(Precision p) { return p == Precision::bf16 ? "bf16" : "fp32"; }

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;
  virtual std::string name() const = 0;

  // ---- memory ----
  // Zero-filled tensor on this backend's device.
  virtual Tensor alloc(std::vector<int64_t> shape, DType dtype = DType::f32) = 0;
  virtual void fill(Tensor& t, float value) = 0;
  virtual void copy(const Tensor& src, Tensor& dst) = 0;          // same numel, same device
  virtual void upload(const void* host, Tensor& dst) = 0;         // host bytes -> dst
  virtual void download(const Tensor& src, void* host) = 0;       // src -> host bytes

  // ---- GEMM ----
  // c (M,N) = alpha * op(a) @ op(b) + beta * c; a is (M,K) or (K,M) when trans_a; b is (K,N) or (N,K)
  // when trans_b. Each tensor is the matrix (dim 0, product of the other dims): (N,H,D) is (N, H*D).
  virtual void gemm(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, Tensor& c, float alpha,
                    float beta) = 0;
  // The same with a and b rounded to bf16 (nearest even) and fp32 accumulation; a, b, c stay f32 tensors.
  virtual void gemm_bf16(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, Tensor& c, float alpha,
                         float beta) = 0;
  // One of the two by precision.
  void gemm(Precision precision, const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, Tensor& c, float alpha,
            float beta) {
    if (precision == Precision::bf16)
      gemm_bf16(a, trans_a, b, trans_b, c, alpha, beta);
    else
      gemm(a, trans_a, b, trans_b, c, alpha, beta);
  }

  // ---- bf16 storage ----
  // dst (bf16) = src (f32) rounded to nearest even; dst (f32) = src (bf16), exact. Same element counts.
  virtual void to_bf16(const Tensor& src, Tensor& dst) = 0;
  virtual void from_bf16(const Tensor& src, Tensor& dst) = 0;

  // ---- elementwise ----
  virtual void add(const Tensor& a, const Tensor& b, Tensor& out) = 0;  // out = a + b; out may alias a or b
  virtual void axpy(float alpha, const Tensor& x, Tensor& y) = 0;       // y += alpha * x
  virtual void scale(Tensor& x, float s) = 0;                           // x *= s
  // Columns of row-major matrices (f32): dst[r, dst_col + j] = src[r, src_col + j] for r < rows, j < width, with src
  // seen as (rows, src.numel() / rows) and dst as (rows, dst.numel() / rows); add: += instead of =. Ulysses packs
  // head ranges with it: x (T,H,D) heads [h, h + n) are columns [h*D, (h + n)*D) of x as (T, H*D).
  virtual void copy_columns(const Tensor& src, int64_t src_col, Tensor& dst, int64_t dst_col, int64_t rows,
                            int64_t width, bool add = false) = 0;

  // ---- RMSNorm over the last dim ----
  // x (N,C), w (C) -> y (N,C), rstd (N)
  virtual void rmsnorm_forward(const Tensor& x, const Tensor& w, float eps, Tensor& y, Tensor& rstd) = 0;
  // dx (N,C) = ..., dw (C) += ...; dx may alias dy
  virtual void rmsnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& rstd, Tensor& dx,
                                Tensor& dw) = 0;

  // ---- rotary embedding, rotate-half convention, in place (frequencies and scale: core/rope.h) ----
  // x (N,H,D), pos (N) i32 global positions
  virtual void rope_forward(Tensor& x, const Tensor& pos, const RopeParams& rope) = 0;
  virtual void rope_backward(Tensor& dx, const Tensor& pos, const RopeParams& rope) = 0;

  // ---- SwiGLU: out = silu(gate) * up ----
  virtual void swiglu_forward(const Tensor& gate, const Tensor& up, Tensor& out) = 0;
  // dgate, dup may alias gate, up (they are read before being written)
  virtual void swiglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up, Tensor& dgate,
                               Tensor& dup) = 0;

  // ---- embedding ----
  // tokens (N) i32, table (V,C) -> out (N,C)
  virtual void embedding_forward(const Tensor& tokens, const Tensor& table, Tensor& out) = 0;
  virtual void embedding_backward(const Tensor& tokens, const Tensor& dout, Tensor& dtable) = 0;  // dtable +=

  // ---- cross-entropy over the last dim ----
  // logits (N,V), labels (N) i32 (negative = ignored) -> losses (N) (0 where ignored), lse (N), and when hits is
  // given hits (N): 1 where the label is the row's argmax (its first largest logit: exact match), else 0
  virtual void cross_entropy_forward(const Tensor& logits, const Tensor& labels, Tensor& losses, Tensor& lse,
                                     Tensor* hits = nullptr) = 0;
  // dlogits = scale * (softmax(logits) - onehot(label)), zero rows where ignored; may alias logits
  virtual void cross_entropy_backward(const Tensor& logits, const Tensor& labels, const Tensor& lse, float scale,
                                      Tensor& dlogits) = 0;

  // ---- reductions (accumulated in double) ----
  virtual double sum(const Tensor& x) = 0;
  virtual double sum_squares(const Tensor& x) = 0;

  // ---- optimizer ----
  virtual void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWStep& s) = 0;
};

// The backend CMake built for `device`; the CPU one always exists. Throws rt::UserError when `device` cannot be used
// (device_unavailable_reason). The CUDA backend runs on this process's GPU (the node-local MPI rank modulo the
// visible GPUs) and orders all its work on one stream: results are ready when download() or sum() returns.
Backend& backend_for(Device device);
Backend& cpu_backend();
// Why `device` cannot be used by this process, as a clause ("this ringtrain was built without CUDA (...)",
// "no CUDA device is visible (...)"); empty when it can.
std::string device_unavailable_reason(Device device);
// How many such devices this process sees: 1 CPU; the visible GPUs (0 in a build without CUDA).
int device_count(Device device);

}  // namespace rt
