// Flat parameter and gradient buffers with named views.
#include "trainer/parameters.h"

#include "core/check.h"

namespace rt {

Parameters::Parameters(Backend& backend, std::vector<ParameterInfo> infos) : infos_(std::move(infos)) {
  for (auto& info : infos_) {
    // Each tensor starts on a 64-byte boundary so kernels see aligned rows.
    total_ = (total_ + 15) / 16 * 16;
    info.offset = total_;
    total_ += shape_numel(info.shape);
  }
  values_ = backend.alloc({total_});
  grads_ = backend.alloc({total_});
}

size_t Parameters::index_of(const std::string& name) const {
  for (size_t i = 0; i < infos_.size(); ++i)
    if (infos_[i].name == name) return i;
  fatal("no parameter named " + name, __FILE__, __LINE__);
}

}  // namespace rt
