// Stop requests by SIGTERM or SIGINT (Slurm preemption, mpirun forwarding, Ctrl-C): a flag the loop polls.
#pragma once
#include <condition_variable>
#include <mutex>
#include <signal.h>
#include <thread>

namespace rt {

// While one exists, SIGTERM and SIGINT set a flag instead of ending the process; a second signal of either kind
// ends it at once, as if no handler were installed. Create it before any compute thread starts: it blocks the two
// signals in the creating thread (so in every thread created after it, such as the OpenMP pool) and unblocks them
// in a watcher thread of its own, so the handler never runs on a thread that is computing. (Handled on compute
// threads, a SIGINT during training corrupted the heap inside oneDNN's sgemm in 6 of 32 runs of
// tests/checkpoints' SIGINT test on this machine; kept off them, in none of 48.) The previous handlers and mask
// come back on destruction.
class StopSignals {
 public:
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
  // The signal received (SIGTERM or SIGINT), 0 when none.
  static int received();

 private:
  sigset_t previous_mask_;
  struct sigaction previous_term_ {}, previous_int_ {};
  std::mutex mutex_;
  std::condition_variable done_;
  bool stopping_ = false;
  std::thread watcher_;
};

}  // namespace rt
