// Jobs in which the MPI watchdog must end a hung collective (for mpi_watchdog_test), 3 ranks, deadline 2 s:
//   stuck     rank 2 computes (a busy loop) for 60 s while ranks 0 and 1 wait in an all-reduce
//   stopped   rank 2 stops itself (SIGSTOP) while ranks 0 and 1 wait in an all-reduce
//   mismatch  ranks 0 and 1 wait in an all-reduce, rank 2 in a barrier: every rank answers from inside communication
//   healthy   every rank waits 1 s (less than the deadline) before the all-reduce, twice: the job ends normally
#include <mpi.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include "parallel/communicator.h"

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  const char* mode = argc > 1 ? argv[1] : "";
  {
    std::unique_ptr<rt::Communicator> world = rt::mpi_world(2.0);
    rt::comm_step_set(7);
    double value = 1;
    const bool odd_one = world->rank() == 2;
    if (std::strcmp(mode, "healthy") == 0) {
      for (int i = 0; i < 2; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1000 + 400 * world->rank()));
        world->all_reduce_sum(&value, 1);
      }
      if (world->rank() == 0) std::printf("healthy: sum %.0f\n", value);
    } else if (odd_one && std::strcmp(mode, "stuck") == 0) {
      const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(60);
      volatile double x = 0;
      while (std::chrono::steady_clock::now() < end) x = x + 1;
    } else if (odd_one && std::strcmp(mode, "stopped") == 0) {
      raise(SIGSTOP);
    } else if (odd_one && std::strcmp(mode, "mismatch") == 0) {
      world->barrier();
    } else {
      world->all_reduce_sum(&value, 1);
    }
  }
  MPI_Finalize();
  return 0;
}
