// The CUDA Backend: checks shapes and devices, then launches the kernels in core/cuda/ on the compute stream.
#include <memory>

#include "core/backend_shapes.h"
#include "core/check.h"
#include "core/cuda/cuda_context.h"
#include "core/cuda/kernels.h"

namespace rt {
namespace {

using shapes::cols;
using shapes::rows;
using shapes::same_numel;

void release(void* p) { cuda_scratch_free(p, cuda_stream()); }

class CudaBackend final : public Backend {
 public:
  CudaBackend() : stream_(cuda_stream()) {}

  Device device() const override { return Device::cuda; }
  std::string name() const override { return "cuda:" + std::to_string(cuda_device()); }

  // Stream-ordered memory from the device's pool; zero-filled on the compute stream.
  Tensor alloc(std::vector<int64_t> shape, DType dtype) override {
    auto s = std::make_shared<Storage>();
    const size_t bytes = static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype);
    s->data = cuda_scratch_alloc(bytes, stream_);
    RT_CHECK_CUDA(cudaMemsetAsync(s->data, 0, bytes, stream_));
    s->bytes = bytes;
    s->device = Device::cuda;
    s->release = release;
    return Tensor(std::move(s), std::move(shape), dtype);
  }

  void fill(Tensor& t, float value) override {
    on_device(t, "fill");
    if (t.dtype() == DType::i32)
      gpu::fill_i32(t.i32(), t.numel(), static_cast<int32_t>(value), stream_);
    else
      gpu::fill_f32(t.f32(), t.numel(), value, stream_);
  }

  void copy(const Tensor& src, Tensor& dst) override {
    same_numel(src, dst, "copy");
    RT_CHECK(src.dtype() == dst.dtype(), "copy between dtypes");
    on_device(src, "copy");
    on_device(dst, "copy");
    RT_CHECK_CUDA(cudaMemcpyAsync(dst.raw(), src.raw(), src.bytes(), cudaMemcpyDeviceToDevice, stream_));
  }
  // Both wait for the copy: the host buffer may be reused (upload) or read (download) when they return.
  void upload(const void* host, Tensor& dst) override {
    on_device(dst, "upload");
    RT_CHECK_CUDA(cudaMemcpyAsync(dst.raw(), host, dst.bytes(), cudaMemcpyHostToDevice, stream_));
    RT_CHECK_CUDA(cudaStreamSynchronize(stream_));
  }
  void download(const Tensor& src, void* host) override {
    on_device(src, "download");
    RT_CHECK_CUDA(cudaMemcpyAsync(host, src.raw(), src.bytes(), cudaMemcpyDeviceToHost, stream_));
    RT_CHECK_CUDA(cudaStreamSynchronize(stream_));
  }

  void gemm(const Tensor& a, bool ta, const Tensor& b, bool tb, Tensor& c, float alpha, float beta) override {
    const shapes::GemmDims g = shapes::gemm_dims(a, ta, b, tb, c);
    gpu::gemm(ta, tb, g.M, g.N, g.K, alpha, a.f32(), g.lda, b.f32(), g.ldb, beta, c.f32(), g.N);
  }
  void to_bf16(const Tensor& src, Tensor& dst) override {
    shapes::same_numel(src, dst, "to_bf16");
    RT_CHECK(src.dtype() == DType::f32 && dst.dtype() == DType::bf16, "to_bf16 takes f32 to bf16");
    gpu::to_bf16(src.f32(), 1, src.numel(), src.numel(), static_cast<__nv_bfloat16*>(dst.raw()), cuda_stream());
  }
  void from_bf16(const Tensor& src, Tensor& dst) override {
    shapes::same_numel(src, dst, "from_bf16");
    RT_CHECK(src.dtype() == DType::bf16 && dst.dtype() == DType::f32, "from_bf16 takes bf16 to f32");
    gpu::from_bf16(static_cast<const __nv_bfloat16*>(src.raw()), src.numel(), dst.f32(), cuda_stream());
  }
  void gemm_bf16(const Tensor& a, bool ta, const Tensor& b, bool tb, Tensor& c, float alpha, float beta) override {
    const shapes::GemmDims g = shapes::gemm_dims(a, ta, b, tb, c);
    gpu::gemm_bf16(ta, tb, g.M, g.N, g.K, alpha, a.f32(), g.lda, b.f32(), g.ldb, beta, c.f32(), g.N);
  }

  void add(const Tensor& a, const Tensor& b, Tensor& out) override {
    same_numel(a, b, "add");
    same_numel(a, out, "add");
    gpu::add(a.f32(), b.f32(), out.f32(), a.numel(), stream_);
  }
  void axpy(float alpha, const Tensor& x, Tensor& y) override {
    same_numel(x, y, "axpy");
    gpu::axpy(alpha, x.f32(), y.f32(), x.numel(), stream_);
  }
  void scale(Tensor& x, float s) override { gpu::scale(x.f32(), s, x.numel(), stream_); }
  void copy_columns(const Tensor& src, int64_t src_col, Tensor& dst, int64_t dst_col, int64_t rows, int64_t width,
                    bool add) override {
    const shapes::ColumnsDims d = shapes::copy_columns_dims(src, src_col, dst, dst_col, rows, width);
    on_device(src, "copy_columns");
    on_device(dst, "copy_columns");
    gpu::copy_columns(src.f32() + src_col, d.ls, dst.f32() + dst_col, d.ld, rows, width, add, stream_);
  }

  void rmsnorm_forward(const Tensor& x, const Tensor& w, float eps, Tensor& y, Tensor& rstd) override {
    const auto [N, C] = shapes::rmsnorm_dims(x, w, y, rstd);
    gpu::rmsnorm_forward(x.f32(), w.f32(), eps, N, C, y.f32(), rstd.f32(), stream_);
  }
  void rmsnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& rstd, Tensor& dx,
                        Tensor& dw) override {
    const auto [N, C] = shapes::rmsnorm_backward_dims(dy, x, w, rstd, dx, dw);
    gpu::rmsnorm_backward(dy.f32(), x.f32(), w.f32(), rstd.f32(), N, C, dx.f32(), dw.f32(), stream_);
  }

  void rope_forward(Tensor& x, const Tensor& pos, const RopeParams& r) override { rope(x, pos, r, 1.f); }
  void rope_backward(Tensor& dx, const Tensor& pos, const RopeParams& r) override { rope(dx, pos, r, -1.f); }

  void swiglu_forward(const Tensor& gate, const Tensor& up, Tensor& out) override {
    shapes::swiglu_check({&up, &out}, gate, "swiglu");
    gpu::swiglu_forward(gate.f32(), up.f32(), gate.numel(), out.f32(), stream_);
  }
  void swiglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up, Tensor& dgate, Tensor& dup) override {
    shapes::swiglu_check({&up, &dout, &dgate, &dup}, gate, "swiglu backward");
    gpu::swiglu_backward(dout.f32(), gate.f32(), up.f32(), gate.numel(), dgate.f32(), dup.f32(), stream_);
  }

  void embedding_forward(const Tensor& tokens, const Tensor& table, Tensor& out) override {
    RT_CHECK(out.numel() == tokens.numel() * cols(table), "embedding shapes");
    gpu::embedding_forward(tokens.i32(), table.f32(), tokens.numel(), cols(table), out.f32(), stream_);
  }
  void embedding_backward(const Tensor& tokens, const Tensor& dout, Tensor& dtable) override {
    RT_CHECK(dout.numel() == tokens.numel() * cols(dtable), "embedding backward shapes");
    gpu::embedding_backward(tokens.i32(), dout.f32(), tokens.numel(), cols(dtable), dtable.f32(), stream_);
  }

  void cross_entropy_forward(const Tensor& logits, const Tensor& labels, Tensor& losses, Tensor& lse,
                             Tensor* hits) override {
    const auto [N, V] = shapes::cross_entropy_dims(logits, {&labels, &losses, &lse});
    if (hits) same_numel(*hits, losses, "cross-entropy hits");
    gpu::cross_entropy_forward(logits.f32(), labels.i32(), N, V, losses.f32(), lse.f32(), hits ? hits->f32() : nullptr,
                               stream_);
  }
  void cross_entropy_backward(const Tensor& logits, const Tensor& labels, const Tensor& lse, float scale,
                              Tensor& dlogits) override {
    const auto [N, V] = shapes::cross_entropy_dims(logits, {&labels, &lse});
    same_numel(logits, dlogits, "cross-entropy backward");
    gpu::cross_entropy_backward(logits.f32(), labels.i32(), lse.f32(), N, V, scale, dlogits.f32(), stream_);
  }

  double sum(const Tensor& x) override { return gpu::sum(x.f32(), x.numel(), stream_); }
  double sum_squares(const Tensor& x) override { return gpu::sum_squares(x.f32(), x.numel(), stream_); }

  void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWStep& s) override {
    same_numel(param, grad, "adamw");
    same_numel(param, m, "adamw");
    same_numel(param, v, "adamw");
    gpu::adamw_update(param.f32(), grad.f32(), m.f32(), v.f32(), param.numel(), s, stream_);
  }

 private:
  static void on_device(const Tensor& t, const char* what) {
    RT_CHECK(t.device() == Device::cuda, std::string(what) + ": tensor " + t.shape_string() + " is not on the GPU");
  }
  void rope(Tensor& x, const Tensor& pos, const RopeParams& r, float sign) {
    shapes::rope_check(x, pos);
    gpu::rope_apply(x.f32(), pos.i32(), x.dim(0), x.dim(1), x.dim(2), r, sign, stream_);
  }

  cudaStream_t stream_;
};

}  // namespace

Backend& cuda_backend() {
  static CudaBackend backend;
  return backend;
}

}  // namespace rt
