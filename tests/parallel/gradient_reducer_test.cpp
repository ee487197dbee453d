// The bucketed gradient all-reduce equals the whole-buffer one, whatever the buckets, on its thread
// (MPI_THREAD_MULTIPLE) and without it (funneled: finish() reduces the whole buffer). Run at 1-3 ranks.
#include "parallel/gradient_reducer.h"

#include <gtest/gtest.h>
#include <mpi.h>

#include <random>
#include <thread>

#include "core/backend.h"
#include "parallel/communicator.h"
#include "parallel/mpi_exchange_thread.h"

namespace rt {
namespace {

// Values that sum exactly in fp32 in any order: integers below 2^20, distinct per rank and element.
float value(int rank, int64_t i) { return static_cast<float>((rank + 1) * 1000 + i % 997); }

TEST(GradientReducer, BucketsPostedDuringWorkEqualOneAllReduce) {
  std::unique_ptr<Communicator> world = mpi_world();
  const int n = world->size(), r = world->rank();
  Backend& be = cpu_backend();
  const int64_t count = 100003;
  Tensor grads = be.alloc({count}), whole = be.alloc({count});
  GradientReducer reducer(*world, grads);
  EXPECT_EQ(reducer.overlaps(), n > 1 && mpi_thread_multiple());
  // Two steps, as the training loop does: the buckets of the backward's order (last stretch first), uneven sizes.
  for (int step = 0; step < 2; ++step) {
    for (int64_t i = 0; i < count; ++i) grads.f32()[i] = whole.f32()[i] = value(r, i + step);
    world->all_reduce_sum(whole);
    std::vector<int64_t> cuts = {0, 1, 777, 50000, 50001, 99999, count};
    for (size_t b = cuts.size() - 1; b-- > 0;) {
      reducer.post(cuts[b], cuts[b + 1]);
      std::this_thread::sleep_for(std::chrono::microseconds(200));  // the caller computes meanwhile
    }
    reducer.finish();
    for (int64_t i = 0; i < count; ++i)
      ASSERT_EQ(grads.f32()[i], whole.f32()[i]) << "step " << step << " element " << i;
  }
  if (reducer.overlaps()) {
    EXPECT_EQ(reducer.stats().buckets, 12);
    EXPECT_GE(reducer.stats().reduce_s, 0.0);
  }
}

}  // namespace
}  // namespace rt
