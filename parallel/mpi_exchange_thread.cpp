// The exchange thread of the MPI communicator: posted neighbour exchanges run in order on their own thread.
#include "parallel/mpi_exchange_thread.h"

#include "core/check.h"

namespace rt {

MpiExchangeThread::~MpiExchangeThread() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  posted_.notify_all();
  if (thread_.joinable()) thread_.join();
}

int64_t MpiExchangeThread::post(const void* send, void* recv, int count, MPI_Datatype type, int dst, int src, int tag,
                                std::string what) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
  queue_.push_back({send, recv, count, type, dst, src, tag, std::move(what)});
  posted_.notify_all();
  return next_id_++;
}

void MpiExchangeThread::wait(int64_t id) {
  std::unique_lock<std::mutex> lock(mutex_);
  completed_.wait(lock, [&] { return done_ > id; });
}

void MpiExchangeThread::run() {
  for (;;) {
    Exchange e;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      posted_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, nothing left
      e = queue_.front();
    }
    {
      MpiWatchdog::Watch watch(watchdog_, std::move(e.what));
      RT_CHECK_MPI(MPI_Sendrecv(e.send, e.count, e.type, e.dst, e.tag, e.recv, e.count, e.type, e.src, e.tag, comm_,
                                MPI_STATUS_IGNORE));
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.pop_front();
      ++done_;
    }
    completed_.notify_all();
  }
}

bool mpi_thread_multiple() {
  int level = MPI_THREAD_SINGLE;
  MPI_Query_thread(&level);
  return level == MPI_THREAD_MULTIPLE;
}

}  // namespace rt
