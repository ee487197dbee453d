// Cross-rank parameter agreement check by xxh3 hashes of the flat parameter buffer.
#include "trainer/parameter_check.h"

#include <xxhash.h>

#include <string>

#include "core/check.h"

namespace rt {

std::vector<int> parameters_differing_ranks(Communicator& world, const Parameters& params) {
  if (world.size() == 1) return {};
  const Tensor& values = params.values();
  std::vector<char> host;  // GPU parameters are hashed from a host copy
  if (values.device() != Device::cpu) {
    host.resize(values.bytes());
    backend_for(values.device()).download(values, host.data());
  }
  const uint64_t mine = XXH3_64bits(host.empty() ? values.raw() : host.data(), values.bytes());
  std::vector<uint64_t> all(static_cast<size_t>(world.size()));
  world.all_gather(&mine, all.data());
  std::vector<int> differing;
  for (size_t r = 1; r < all.size(); ++r)
    if (all[r] != all[0]) differing.push_back(static_cast<int>(r));
  return differing;
}

void parameters_check_agree(Communicator& world, const Parameters& params, int64_t step) {
  const std::vector<int> differing = parameters_differing_ranks(world, params);
  if (differing.empty()) return;
  std::string ranks;
  for (int r : differing) ranks += (ranks.empty() ? "" : ", ") + std::to_string(r);
  fatal("parameters diverged across ranks at step " + std::to_string(step) + ": ranks " + ranks +
            " differ from rank 0",
        __FILE__, __LINE__);
}

}  // namespace rt
