// The cross-rank parameter check finds exactly the ranks whose parameters differ (run under mpirun at 2 and 3 ranks).
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "trainer/parameter_check.h"

namespace rt {
namespace {

TEST(ParameterCheck, FindsExactlyTheRanksThatDiffer) {
  std::unique_ptr<Communicator> world = mpi_world();
  Backend& be = cpu_backend();
  Parameters params(be, {{"a.weight", {7, 5}, 0, true}, {"b.weight", {13}, 0, false}});
  for (int64_t i = 0; i < params.count(); ++i) params.values().f32()[i] = 0.25f * static_cast<float>(i % 11);
  EXPECT_TRUE(parameters_differing_ranks(*world, params).empty());

  // The last rank flips the lowest bit of one value: a difference no tolerance-based check would see.
  const int last = world->size() - 1;
  if (world->rank() == last && last > 0) {
    float& x = params.values().f32()[params.count() - 1];
    uint32_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    bits ^= 1u;
    std::memcpy(&x, &bits, sizeof bits);
  }
  const std::vector<int> differing = parameters_differing_ranks(*world, params);
  if (last == 0)
    EXPECT_TRUE(differing.empty());
  else
    EXPECT_EQ(differing, std::vector<int>{last});
}

}  // namespace
}  // namespace rt
