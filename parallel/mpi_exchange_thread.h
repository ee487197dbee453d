// A thread that runs a communicator's neighbour exchanges, so that they progress while the caller computes.
#pragma once
#include <mpi.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "parallel/mpi_watchdog.h"

namespace rt {

// Open MPI has no asynchronous progress over shared memory: a large MPI_Isend/Irecv pair moves its data only inside
// later MPI calls, i.e. in wait(), after the compute it was meant to overlap. This thread instead runs each exchange
// as a blocking MPI_Sendrecv, in the order posted, while the caller's threads compute; the watchdog (if any) holds
// each to its deadline. Needs MPI_THREAD_MULTIPLE.
class MpiExchangeThread {
 public:
  MpiExchangeThread(MPI_Comm comm, MpiWatchdog* watchdog) : comm_(comm), watchdog_(watchdog) {}
  ~MpiExchangeThread();

  // Queues send (count elements of type to dst) + receive (from src), described by `what` for the watchdog; returns
  // the exchange's sequence number.
  int64_t post(const void* send, void* recv, int count, MPI_Datatype type, int dst, int src, int tag, std::string what);
  // Blocks until exchange `id` (and every one posted before it) has completed.
  void wait(int64_t id);

 private:
  struct Exchange {
    const void* send;
    void* recv;
    int count;
    MPI_Datatype type;
    int dst, src, tag;
    std::string what;
  };
  void run();

  MPI_Comm comm_;
  MpiWatchdog* watchdog_;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable posted_, completed_;
  std::deque<Exchange> queue_;
  int64_t next_id_ = 0, done_ = 0;  // exchanges [0, done_) have completed
  bool stop_ = false;
};

// True when MPI was initialised with MPI_THREAD_MULTIPLE (then communicators use an exchange thread).
bool mpi_thread_multiple();

}  // namespace rt
