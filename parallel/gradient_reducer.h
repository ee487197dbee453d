// Data-parallel gradients all-reduced in buckets on a thread of their own while the backward goes on (PyTorch DDP).
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

#include "parallel/communicator.h"

namespace rt {

// The backward hands over each stretch [begin, end) of the flat gradient buffer as it receives its last contribution
// (post), last layers first; a thread all-reduces them one by one, in the order posted, on a communicator of its own
// (a split of `group`: its collectives never interleave with the caller's); finish() waits for the rest. The buckets
// and their order are the same every step, so every run and its resumption reduce alike. Without a thread (one rank,
// MPI without MPI_THREAD_MULTIPLE, or GPU gradients, whose NCCL all-reduce is queued on a stream anyway) post does
// nothing and finish() all-reduces the whole buffer, as before buckets existed.
class GradientReducer {
 public:
  GradientReducer(Communicator& group, Tensor grads);  // collective over `group` (it splits it)
  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  bool overlaps() const { return static_cast<bool>(thread_.joinable()); }
  void post(int64_t begin, int64_t end);  // elements of grads
  void finish();                          // every posted bucket (or, without a thread, the whole buffer) reduced

  // Seconds the thread spent in all-reduces, and seconds finish() blocked (the exposed part), since construction.
  struct Stats {
    double reduce_s = 0, exposed_s = 0;
    int64_t buckets = 0;
  };
  Stats stats() const;

 private:
  void run();

  Communicator& group_;
  Tensor grads_;
  std::unique_ptr<Communicator> own_;  // the thread's communicator
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::pair<int64_t, int64_t>> queue_;
  int64_t posted_ = 0, done_ = 0;
  bool stop_ = false;
  Stats stats_;
  std::thread thread_;  // last: starts after the members it uses
};

}  // namespace rt
