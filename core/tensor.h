// Tensor: a shape, a dtype, a device and shared storage; views share storage at an element offset.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "core/memory_count.h"

namespace rt {

enum class DType { f32, i32, bf16 };  // bf16: 16-bit brain float (transport and storage only)
enum class Device { cpu, cuda };

size_t dtype_size(DType t);
const char* dtype_name(DType t);

// Raw memory owned by a backend; freed with the function the backend supplied.
struct Storage {
  void* data = nullptr;
  size_t bytes = 0;
  Device device = Device::cpu;
  void (*release)(void*) = nullptr;
  int64_t counted = 0;  // bytes recorded in memory_count (core/memory_count.h), given back with the storage
  Storage() = default;
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  ~Storage() {
    if (release && data) release(data);
    if (counted) memory_count_add(-counted);
  }
};

// A contiguous row-major array. Copying a Tensor copies the handle, not the data.
class Tensor {
 public:
  Tensor() = default;
  Tensor(std::shared_ptr<Storage> storage, std::vector<int64_t> shape, DType dtype, int64_t offset = 0);

  const std::vector<int64_t>& shape() const { return shape_; }
  int64_t dim(int i) const;  // negative counts from the end
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t numel() const;
  DType dtype() const { return dtype_; }
  Device device() const { return storage_ ? storage_->device : Device::cpu; }
  bool defined() const { return storage_ != nullptr; }
  size_t bytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }

  float* f32();
  const float* f32() const;
  int32_t* i32();
  const int32_t* i32() const;
  void* raw();
  const void* raw() const;

  // Same storage, new shape with the same element count.
  Tensor reshape(std::vector<int64_t> shape) const;
  // Rows [begin, end) of the leading dimension, sharing storage.
  Tensor rows(int64_t begin, int64_t end) const;
  // Elements [begin, begin + count) as a 1-D view, or reshaped to `shape` when given.
  Tensor slice(int64_t begin, std::vector<int64_t> shape) const;

  std::string shape_string() const;

 private:
  std::shared_ptr<Storage> storage_;
  std::vector<int64_t> shape_;
  DType dtype_ = DType::f32;
  int64_t offset_ = 0;  // in elements
};

int64_t shape_numel(const std::vector<int64_t>& shape);

}  // namespace rt
