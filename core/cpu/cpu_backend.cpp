// The CPU Backend: checks shapes, then calls the kernels in core/cpu/.
#include <cstdlib>
#include <cstring>

#include "core/backend_shapes.h"
#include "core/bf16.h"
#include "core/check.h"
#include "core/compute_time.h"
#include "core/cpu/kernels.h"

namespace rt {
namespace {

using shapes::cols;
using shapes::rows;
using shapes::same_numel;

class CpuBackend final : public Backend {
 public:
  Device device() const override { return Device::cpu; }
  std::string name() const override { return "cpu"; }

  Tensor alloc(std::vector<int64_t> shape, DType dtype) override {
    auto s = std::make_shared<Storage>();
    size_t bytes = static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype);
    size_t padded = (bytes + 63) / 64 * 64;
    s->data = std::aligned_alloc(64, padded ? padded : 64);
    RT_CHECK(s->data != nullptr, "out of host memory allocating " + std::to_string(bytes) + " bytes");
    std::memset(s->data, 0, padded);
    s->bytes = bytes;
    s->device = Device::cpu;
    s->release = std::free;
    s->counted = static_cast<int64_t>(padded ? padded : 64);
    memory_count_add(s->counted);
    return Tensor(std::move(s), std::move(shape), dtype);
  }

  void fill(Tensor& t, float value) override {
    if (t.dtype() == DType::i32) {
      int32_t* p = t.i32();
      for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<int32_t>(value);
      return;
    }
    float* p = t.f32();
    const int64_t n = t.numel();
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) p[i] = value;
  }

  void copy(const Tensor& src, Tensor& dst) override {
    same_numel(src, dst, "copy");
    RT_CHECK(src.dtype() == dst.dtype(), "copy between dtypes");
    std::memmove(dst.raw(), src.raw(), src.bytes());
  }
  void upload(const void* host, Tensor& dst) override { std::memcpy(dst.raw(), host, dst.bytes()); }
  void download(const Tensor& src, void* host) override { std::memcpy(host, src.raw(), src.bytes()); }

  void gemm(const Tensor& a, bool ta, const Tensor& b, bool tb, Tensor& c, float alpha, float beta) override {
    const shapes::GemmDims g = shapes::gemm_dims(a, ta, b, tb, c);
    const ComputeTimed timed(ComputeKind::gemm);
    cpu::gemm(ta, tb, g.M, g.N, g.K, alpha, a.f32(), g.lda, b.f32(), g.ldb, beta, c.f32(), g.N);
  }
  void gemm_bf16(const Tensor& a, bool ta, const Tensor& b, bool tb, Tensor& c, float alpha, float beta) override {
    const shapes::GemmDims g = shapes::gemm_dims(a, ta, b, tb, c);
    const ComputeTimed timed(ComputeKind::gemm);
    cpu::gemm_bf16(ta, tb, g.M, g.N, g.K, alpha, a.f32(), g.lda, b.f32(), g.ldb, beta, c.f32(), g.N);
  }

  void to_bf16(const Tensor& src, Tensor& dst) override {
    same_numel(src, dst, "to_bf16");
    RT_CHECK(src.dtype() == DType::f32 && dst.dtype() == DType::bf16, "to_bf16 takes f32 to bf16");
    const float* x = src.f32();
    auto* y = static_cast<uint16_t*>(dst.raw());
    const int64_t n = src.numel();
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) y[i] = bf16_bits(x[i]);
  }
  void from_bf16(const Tensor& src, Tensor& dst) override {
    same_numel(src, dst, "from_bf16");
    RT_CHECK(src.dtype() == DType::bf16 && dst.dtype() == DType::f32, "from_bf16 takes bf16 to f32");
    const auto* x = static_cast<const uint16_t*>(src.raw());
    float* y = dst.f32();
    const int64_t n = src.numel();
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) y[i] = bf16_to_float(x[i]);
  }

  void add(const Tensor& a, const Tensor& b, Tensor& out) override {
    same_numel(a, b, "add");
    same_numel(a, out, "add");
    const float* pa = a.f32();
    const float* pb = b.f32();
    float* po = out.f32();
    const int64_t n = a.numel();
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) po[i] = pa[i] + pb[i];
  }
  void copy_columns(const Tensor& src, int64_t src_col, Tensor& dst, int64_t dst_col, int64_t rows, int64_t width,
                    bool add) override {
    const shapes::ColumnsDims d = shapes::copy_columns_dims(src, src_col, dst, dst_col, rows, width);
    const float* ps = src.f32() + src_col;
    float* pd = dst.f32() + dst_col;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const float* s = ps + r * d.ls;
      float* t = pd + r * d.ld;
      if (add)
        for (int64_t j = 0; j < width; ++j) t[j] += s[j];
      else
        std::memmove(t, s, static_cast<size_t>(width) * sizeof(float));
    }
  }
  void axpy(float alpha, const Tensor& x, Tensor& y) override {
    same_numel(x, y, "axpy");
    const float* px = x.f32();
    float* py = y.f32();
    const int64_t n = x.numel();
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) py[i] += alpha * px[i];
  }
  void scale(Tensor& x, float s) override {
    float* p = x.f32();
    const int64_t n = x.numel();
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) p[i] *= s;
  }

  void rmsnorm_forward(const Tensor& x, const Tensor& w, float eps, Tensor& y, Tensor& rstd) override {
    const auto [N, C] = shapes::rmsnorm_dims(x, w, y, rstd);
    cpu::rmsnorm_forward(x.f32(), w.f32(), eps, N, C, y.f32(), rstd.f32());
  }
  void rmsnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& rstd, Tensor& dx,
                        Tensor& dw) override {
    const auto [N, C] = shapes::rmsnorm_backward_dims(dy, x, w, rstd, dx, dw);
    cpu::rmsnorm_backward(dy.f32(), x.f32(), w.f32(), rstd.f32(), N, C, dx.f32(), dw.f32());
  }

  void rope_forward(Tensor& x, const Tensor& pos, const RopeParams& r) override { rope(x, pos, r, 1.f); }
  void rope_backward(Tensor& dx, const Tensor& pos, const RopeParams& r) override { rope(dx, pos, r, -1.f); }

  void swiglu_forward(const Tensor& gate, const Tensor& up, Tensor& out) override {
    shapes::swiglu_check({&up, &out}, gate, "swiglu");
    cpu::swiglu_forward(gate.f32(), up.f32(), gate.numel(), out.f32());
  }
  void swiglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up, Tensor& dgate, Tensor& dup) override {
    shapes::swiglu_check({&up, &dout, &dgate, &dup}, gate, "swiglu backward");
    cpu::swiglu_backward(dout.f32(), gate.f32(), up.f32(), gate.numel(), dgate.f32(), dup.f32());
  }

  void embedding_forward(const Tensor& tokens, const Tensor& table, Tensor& out) override {
    RT_CHECK(out.numel() == tokens.numel() * cols(table), "embedding shapes");
    cpu::embedding_forward(tokens.i32(), table.f32(), tokens.numel(), cols(table), out.f32());
  }
  void embedding_backward(const Tensor& tokens, const Tensor& dout, Tensor& dtable) override {
    RT_CHECK(dout.numel() == tokens.numel() * cols(dtable), "embedding backward shapes");
    cpu::embedding_backward(tokens.i32(), dout.f32(), tokens.numel(), rows(dtable), cols(dtable), dtable.f32());
  }

  void cross_entropy_forward(const Tensor& logits, const Tensor& labels, Tensor& losses, Tensor& lse,
                             Tensor* hits) override {
    const auto [N, V] = shapes::cross_entropy_dims(logits, {&labels, &losses, &lse});
    if (hits) same_numel(*hits, losses, "cross-entropy hits");
    cpu::cross_entropy_forward(logits.f32(), labels.i32(), N, V, losses.f32(), lse.f32(), hits ? hits->f32() : nullptr);
  }
  void cross_entropy_backward(const Tensor& logits, const Tensor& labels, const Tensor& lse, float scale,
                              Tensor& dlogits) override {
    const auto [N, V] = shapes::cross_entropy_dims(logits, {&labels, &lse});
    same_numel(logits, dlogits, "cross-entropy backward");
    cpu::cross_entropy_backward(logits.f32(), labels.i32(), lse.f32(), N, V, scale, dlogits.f32());
  }

  double sum(const Tensor& x) override { return cpu::sum(x.f32(), x.numel()); }
  double sum_squares(const Tensor& x) override { return cpu::sum_squares(x.f32(), x.numel()); }

  void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWStep& s) override {
    same_numel(param, grad, "adamw");
    same_numel(param, m, "adamw");
    same_numel(param, v, "adamw");
    cpu::adamw_update(param.f32(), grad.f32(), m.f32(), v.f32(), param.numel(), s);
  }

 private:
  static void rope(Tensor& x, const Tensor& pos, const RopeParams& r, float sign) {
    shapes::rope_check(x, pos);
    cpu::rope_apply(x.f32(), pos.i32(), x.dim(0), x.dim(1), x.dim(2), r, sign);
  }
};

}  // namespace

Backend& cpu_backend() {
  static CpuBackend backend;
  return backend;
}

}  // namespace rt
