// Cross-rank parameter agreement check by xxh3 hashes of the flat parameter buffer.
#include "trainer/parameter_check.h"

#include <xxhash.h>

#include <string>
#include <vector>

#include "core/check.h"

namespace rt {

void parameters_check_agree(Communicator& world, const Parameters& params, int64_t step) {
  if (world.size() == 1) return;
  const Tensor& values = params.values();
  const uint64_t mine = XXH3_64bits(values.raw(), values.bytes());
  std::vector<uint64_t> all(static_cast<size_t>(world.size()));
  world.all_gather(&mine, all.data());
  std::string differing;
  for (size_t r = 1; r < all.size(); ++r)
    if (all[r] != all[0]) differing += (differing.empty() ? "" : ", ") + std::to_string(r);
  if (!differing.empty())
    fatal("parameters diverged across ranks at step " + std::to_string(step) + ": ranks " + differing +
              " differ from rank 0",
          __FILE__, __LINE__);
}

}  // namespace rt
