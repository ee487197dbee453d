// Deadlines for MPI: no rank waits forever for a peer that stopped, died, lost its link or is stuck in a loop.
#pragma once
#include <mpi.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "parallel/communicator.h"

namespace rt {

// One per process, shared by its MPI communicators. Its thread answers the liveness probes of other ranks, on a
// duplicate of MPI_COMM_WORLD, every 20 ms. When a blocking operation of this rank (a collective, a ring exchange)
// has waited timeout_s, it probes every rank, waits up to a second for the answers, and names the culprit: the ranks
// that do not answer (stopped, dead, or cut off), else those that answer but have been outside communication longest
// (computing, or stuck in a loop), else the operations each rank waits in (they disagree). It sends that verdict to
// every rank that answered, each of which prints one line — its own operation, the step, the culprit — and the job
// ends through MPI_Abort (core/check.h). Needs MPI_THREAD_MULTIPLE.
class MpiWatchdog {
 public:
  // Collective over MPI_COMM_WORLD: duplicates it and gathers every rank's host name.
  explicit MpiWatchdog(double timeout_s);
  ~MpiWatchdog();
  MpiWatchdog(const MpiWatchdog&) = delete;
  MpiWatchdog& operator=(const MpiWatchdog&) = delete;

  // A blocking operation of the calling thread, from construction to destruction ("all_reduce_sum of 12 floats over
  // ranks 0-3"). A null watchdog watches nothing.
  class Watch {
   public:
    Watch(MpiWatchdog* dog, std::string what);
    ~Watch();
    Watch(const Watch&) = delete;
    Watch& operator=(const Watch&) = delete;

   private:
    MpiWatchdog* dog_;
    int slot_ = -1;
  };

  double timeout_s() const { return timeout_s_; }
  // "rank 3 on node1": a world rank with its host.
  std::string rank_name(int world_rank) const;

 private:
  using Clock = std::chrono::steady_clock;
  struct Slot {
    bool active = false;
    std::string what;
    Clock::time_point since;
  };
  struct Status;  // a rank's answer to a probe

  static int on_finalize(MPI_Comm, int, void* watchdog, void*);
  void stop();  // joins the thread (idempotent)
  int begin(std::string what);
  void end(int slot);
  void run();
  void poll();                                     // handles the messages that have arrived
  void send(int dst, int tag, std::string bytes);  // non-blocking; the buffer is kept until the send completes
  void drop_completed_sends();
  Status status_now();
  void investigate();
  [[noreturn]] void finish(const std::string& verdict, int found_by, bool remote_silent);

  double timeout_s_;
  MPI_Comm comm_ = MPI_COMM_NULL;
  int keyval_ = MPI_KEYVAL_INVALID;  // MPI_COMM_SELF's attribute that stops the thread in MPI_Finalize
  int rank_ = 0, size_ = 1;
  std::vector<std::string> hosts_;

  std::mutex mutex_;              // guards slots_, idle_since_
  std::vector<Slot> slots_;       // operations in progress on this rank's threads
  Clock::time_point idle_since_;  // when the last operation ended (or the watchdog started)

  // The watchdog thread's own state.
  std::vector<char> inbox_;
  MPI_Request inbox_request_ = MPI_REQUEST_NULL;
  std::deque<std::pair<MPI_Request, std::string>> sends_;
  std::map<int, std::string> answers_;  // rank -> its Status, while probing
  bool stop_ = false;
  std::mutex stop_mutex_;
  std::thread thread_;  // last: starts after the members it uses
};

}  // namespace rt
