// A job whose rank 0 exchanges with rank 1 over NCCL while rank 1 never answers (for nccl_watchdog_test): the NCCL
// communicator's watchdog must end it, with its message, after the 2 s timeout given here.
#include <mpi.h>

#include <chrono>
#include <thread>

#include "core/backend.h"
#include "core/cuda/cuda_context.h"
#include "parallel/communicator.h"

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  {
    std::unique_ptr<rt::Communicator> world = rt::nccl_world(2.0);
    rt::Backend& gpu = rt::backend_for(rt::Device::cuda);
    rt::Tensor send = gpu.alloc({1024}), recv = gpu.alloc({1024});
    gpu.fill(send, 1.f);
    if (world->rank() == 0) {
      rt::CommHandle h = world->sendrecv_async(send, 1, recv, 1);
      world->wait(h);
      cudaStreamSynchronize(rt::cuda_stream());  // the host waits for the exchange that never completes
    }
    std::this_thread::sleep_for(std::chrono::seconds(60));  // rank 1 never takes part; only the watchdog ends this
  }
  MPI_Finalize();
  return 0;
}
