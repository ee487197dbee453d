// The MPI communicator's neighbour exchange delivers exactly what was posted, on either of its paths: the exchange
// thread (MPI_THREAD_MULTIPLE) or MPI_Isend/Irecv (run with --mpi-thread=funneled). Run at 1-3 ranks.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "core/backend.h"
#include "parallel/communicator.h"
#include "parallel/mpi_exchange_thread.h"

namespace rt {
namespace {

// The value element i of the block that started on rank `origin` holds: distinct per rank and element, exact in f32.
int32_t block_value(int origin, int64_t i) { return 10000 * (origin + 1) + static_cast<int32_t>(i); }

// Ring attention's pattern: two exchanges in flight at once (an f32 block to the right, an i32 block to the left),
// waited for in the other order, for `size` steps; every block is where the ring put it after each step and home
// at the end.
TEST(MpiCommunicator, RingExchangesDeliverEveryBlockExactly) {
  std::unique_ptr<Communicator> world = mpi_world();
  const int n = world->size(), r = world->rank(), right = (r + 1) % n, left = (r + n - 1) % n;
  const char* path = mpi_thread_multiple() ? "the exchange thread" : "MPI_Isend/Irecv";
  if (r == 0) std::printf("[  path    ] %d ranks exchange by %s\n", n, path);
  SCOPED_TRACE(std::string("rank ") + std::to_string(r) + " of " + std::to_string(n) + ", exchanges by " + path);
  Backend& be = cpu_backend();
  const int64_t nf = 1000, ni = 513;  // odd sizes, unequal, so a block sent the wrong way shows
  Tensor f[2] = {be.alloc({nf}), be.alloc({nf})}, k[2] = {be.alloc({ni}, DType::i32), be.alloc({ni}, DType::i32)};
  for (int64_t i = 0; i < nf; ++i) f[0].f32()[i] = static_cast<float>(block_value(r, i));
  for (int64_t i = 0; i < ni; ++i) k[0].i32()[i] = -block_value(r, i);
  for (int step = 1; step <= n; ++step) {
    const int held = (step - 1) % 2, next = step % 2;  // double buffer
    CommHandle to_right = world->sendrecv_async(f[held], right, f[next], left);
    CommHandle to_left = world->sendrecv_async(k[held], left, k[next], right);
    world->wait(to_left);
    world->wait(to_right);
    EXPECT_FALSE(to_right.pending());
    const int f_origin = (r + n - step % n) % n, k_origin = (r + step) % n;
    for (int64_t i = 0; i < nf; ++i)
      ASSERT_EQ(f[next].f32()[i], static_cast<float>(block_value(f_origin, i))) << "step " << step << " element " << i;
    for (int64_t i = 0; i < ni; ++i)
      ASSERT_EQ(k[next].i32()[i], -block_value(k_origin, i)) << "step " << step << " element " << i;
  }
  EXPECT_EQ(f[n % 2].f32()[7], static_cast<float>(block_value(r, 7))) << "the f32 block is home after the ring";
}

// all_to_all: block i of every rank's send lands in block (sender) of rank i's receive, in f32, i32 and bf16, odd
// block sizes, on the world and on a split (Ulysses' groups are splits).
TEST(MpiCommunicator, AllToAllDeliversEveryBlock) {
  std::unique_ptr<Communicator> world = mpi_world();
  std::unique_ptr<Communicator> halves = world->split(world->rank() % 2, world->rank());
  Backend& be = cpu_backend();
  for (Communicator* comm : {world.get(), halves.get()}) {
    const int n = comm->size(), r = comm->rank();
    const int64_t block = 37;
    // value(from, to, i): distinct per sender, receiver and element; exact in f32 and (below 256) in bf16
    auto value = [](int from, int to, int64_t i) { return static_cast<int32_t>(1000 * from + 100 * to + i); };
    Tensor f = be.alloc({n, block}), fr = be.alloc({n, block});
    Tensor k = be.alloc({n, block}, DType::i32), kr = be.alloc({n, block}, DType::i32);
    Tensor b = be.alloc({n, 2}, DType::bf16), br = be.alloc({n, 2}, DType::bf16);
    auto* bits = static_cast<uint16_t*>(b.raw());
    for (int to = 0; to < n; ++to) {
      for (int64_t i = 0; i < block; ++i) {
        f.f32()[to * block + i] = static_cast<float>(value(r, to, i));
        k.i32()[to * block + i] = -value(r, to, i);
      }
      bits[2 * to] = static_cast<uint16_t>(r);
      bits[2 * to + 1] = static_cast<uint16_t>(to);
    }
    comm->all_to_all(f, fr);
    comm->all_to_all(k, kr);
    comm->all_to_all(b, br);
    const auto* got_bits = static_cast<const uint16_t*>(br.raw());
    for (int from = 0; from < n; ++from) {
      for (int64_t i = 0; i < block; ++i) {
        ASSERT_EQ(fr.f32()[from * block + i], static_cast<float>(value(from, r, i))) << "from " << from;
        ASSERT_EQ(kr.i32()[from * block + i], -value(from, r, i)) << "from " << from;
      }
      EXPECT_EQ(got_bits[2 * from], from);
      EXPECT_EQ(got_bits[2 * from + 1], r);
    }
  }
}

// The collectives the trainer uses beside the exchanges, on the same communicator.
TEST(MpiCommunicator, AllReduceBroadcastAndSplit) {
  std::unique_ptr<Communicator> world = mpi_world();
  const int n = world->size(), r = world->rank();
  Backend& be = cpu_backend();
  Tensor t = be.alloc({3});
  for (int i = 0; i < 3; ++i) t.f32()[i] = static_cast<float>(r + i);
  world->all_reduce_sum(t);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(t.f32()[i], static_cast<float>(n * (n - 1) / 2 + n * i));
  Tensor b = be.alloc({2}, DType::i32);
  b.i32()[0] = r == n - 1 ? 42 : 0;
  b.i32()[1] = r == n - 1 ? -7 : 0;
  world->broadcast(b, n - 1);
  EXPECT_EQ(b.i32()[0], 42);
  EXPECT_EQ(b.i32()[1], -7);
  std::unique_ptr<Communicator> half = world->split(r % 2, r);
  EXPECT_EQ(half->size(), (n + 1 - r % 2) / 2);
  EXPECT_EQ(half->rank(), r / 2);
  world->barrier();
}

}  // namespace
}  // namespace rt
