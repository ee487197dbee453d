// Tensor handles: shape arithmetic, typed access and views.
#include "core/tensor.h"

#include "core/check.h"

namespace rt {

size_t dtype_size(DType t) { return t == DType::bf16 ? 2 : 4; }
const char* dtype_name(DType t) { return t == DType::f32 ? "f32" : t == DType::i32 ? "i32" : "bf16"; }

int64_t shape_numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Tensor::Tensor(std::shared_ptr<Storage> storage, std::vector<int64_t> shape, DType dtype, int64_t offset)
    : storage_(std::move(storage)), shape_(std::move(shape)), dtype_(dtype), offset_(offset) {
  RT_CHECK(storage_ != nullptr, "tensor without storage");
  RT_CHECK((offset_ + numel()) * static_cast<int64_t>(dtype_size(dtype_)) <= static_cast<int64_t>(storage_->bytes),
           "view " + shape_string() + " exceeds its storage");
}

int64_t Tensor::dim(int i) const {
  int n = rank();
  if (i < 0) i += n;
  RT_CHECK(i >= 0 && i < n, "dim " + std::to_string(i) + " of tensor " + shape_string());
  return shape_[i];
}

int64_t Tensor::numel() const { return shape_numel(shape_); }

float* Tensor::f32() {
  RT_CHECK(dtype_ == DType::f32, "tensor is not f32");
  return static_cast<float*>(storage_->data) + offset_;
}
const float* Tensor::f32() const {
  RT_CHECK(dtype_ == DType::f32, "tensor is not f32");
  return static_cast<const float*>(storage_->data) + offset_;
}
int32_t* Tensor::i32() {
  RT_CHECK(dtype_ == DType::i32, "tensor is not i32");
  return static_cast<int32_t*>(storage_->data) + offset_;
}
const int32_t* Tensor::i32() const {
  RT_CHECK(dtype_ == DType::i32, "tensor is not i32");
  return static_cast<const int32_t*>(storage_->data) + offset_;
}
void* Tensor::raw() { return static_cast<char*>(storage_->data) + offset_ * dtype_size(dtype_); }
const void* Tensor::raw() const { return static_cast<const char*>(storage_->data) + offset_ * dtype_size(dtype_); }

Tensor Tensor::reshape(std::vector<int64_t> shape) const {
  RT_CHECK(shape_numel(shape) == numel(), "reshape of " + shape_string() + " changes its size");
  return Tensor(storage_, std::move(shape), dtype_, offset_);
}

Tensor Tensor::rows(int64_t begin, int64_t end) const {
  RT_CHECK(rank() >= 1 && 0 <= begin && begin <= end && end <= shape_[0], "rows out of range of " + shape_string());
  std::vector<int64_t> shape = shape_;
  shape[0] = end - begin;
  int64_t row = numel() / (shape_[0] ? shape_[0] : 1);
  return Tensor(storage_, std::move(shape), dtype_, offset_ + begin * row);
}

Tensor Tensor::slice(int64_t begin, std::vector<int64_t> shape) const {
  RT_CHECK(begin >= 0 && begin + shape_numel(shape) <= numel(), "slice out of range of " + shape_string());
  return Tensor(storage_, std::move(shape), dtype_, offset_ + begin);
}

std::string Tensor::shape_string() const {
  std::string s = "(";
  for (size_t i = 0; i < shape_.size(); ++i) s += (i ? ", " : "") + std::to_string(shape_[i]);
  return s + ")";
}

}  // namespace rt
