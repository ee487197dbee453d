// The bucketed gradient all-reduce: a queue of buffer stretches and the thread that reduces them.
#include "parallel/gradient_reducer.h"

#include "core/check.h"
#include "core/timer.h"
#include "parallel/mpi_exchange_thread.h"

namespace rt {

GradientReducer::GradientReducer(Communicator& group, Tensor grads) : group_(group), grads_(std::move(grads)) {
  if (group.size() == 1 || grads_.device() != Device::cpu || !mpi_thread_multiple()) return;
  own_ = group.split(0, group.rank());
  thread_ = std::thread([this] { run(); });
}

GradientReducer::~GradientReducer() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

void GradientReducer::post(int64_t begin, int64_t end) {
  if (!thread_.joinable() || begin == end) return;
  RT_CHECK(begin >= 0 && begin < end && end <= grads_.numel(), "gradient bucket out of range");
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.emplace_back(begin, end);
    ++posted_;
  }
  changed_.notify_all();
}

void GradientReducer::finish() {
  if (!thread_.joinable()) {
    group_.all_reduce_sum(grads_);
    return;
  }
  Timer timer;
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [this] { return done_ == posted_; });
  stats_.exposed_s += timer.seconds();
}

GradientReducer::Stats GradientReducer::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void GradientReducer::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    changed_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stop_, and nothing left
    const auto [begin, end] = queue_.front();
    queue_.pop_front();
    lock.unlock();
    Timer timer;
    Tensor bucket = grads_.slice(begin, {end - begin});
    own_->all_reduce_sum(bucket);
    const double seconds = timer.seconds();
    lock.lock();
    stats_.reduce_s += seconds;
    ++stats_.buckets;
    ++done_;
    changed_.notify_all();
  }
}

}  // namespace rt
