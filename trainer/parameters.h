// Parameters: every weight of the model in one flat buffer (and its gradient in another), by name.
#pragma once
#include <string>
#include <vector>

#include "core/backend.h"

namespace rt {

struct ParameterInfo {
  std::string name;             // Hugging Face Llama name, e.g. model.layers.0.self_attn.q_proj.weight
  std::vector<int64_t> shape;
  int64_t offset = 0;           // in elements, into the flat buffers
  bool decay = true;            // weight decay applies (matrices), not (norm gains)
};

class Parameters {
 public:
  Parameters() = default;
  // Lays out the tensors in the given order and allocates zeroed values and gradients.
  Parameters(Backend& backend, std::vector<ParameterInfo> infos);

  const std::vector<ParameterInfo>& infos() const { return infos_; }
  int64_t count() const { return total_; }
  Tensor& values() { return values_; }        // (count)
  Tensor& grads() { return grads_; }          // (count)
  const Tensor& values() const { return values_; }
  const Tensor& grads() const { return grads_; }
  Tensor value(size_t i) const { return values_.slice(infos_[i].offset, infos_[i].shape); }
  Tensor grad(size_t i) const { return grads_.slice(infos_[i].offset, infos_[i].shape); }
  size_t index_of(const std::string& name) const;  // fatal if absent

 private:
  std::vector<ParameterInfo> infos_;
  int64_t total_ = 0;
  Tensor values_, grads_;
};

}  // namespace rt
