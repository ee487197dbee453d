// SIGTERM / SIGINT: a handler that only records the signal (async-signal-safe), run on a watcher thread only.
#include "trainer/stop_signal.h"

#include <pthread.h>

#include <atomic>

namespace rt {
namespace {

// The handler runs on the watcher thread and received() on others: a volatile sig_atomic_t is only safe within one
// thread (ThreadSanitizer reported the race), a lock-free atomic is safe across threads and in a signal handler.
std::atomic<int> g_received{0};
static_assert(std::atomic<int>::is_always_lock_free);

void on_stop_signal(int signal) {
  if (g_received.load() != 0) {  // the second request: stop now
    ::signal(signal, SIG_DFL);
    ::raise(signal);
    return;
  }
  g_received.store(signal);
}

sigset_t stop_set() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

}  // namespace

StopSignals::StopSignals() {
  g_received.store(0);
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &action, &previous_term_);
  sigaction(SIGINT, &action, &previous_int_);
  const sigset_t set = stop_set();
  pthread_sigmask(SIG_BLOCK, &set, &previous_mask_);
  // The watcher inherits the block and lifts it for itself: the kernel hands the signals to it (or to a library's
  // service thread that never blocked them), never to a thread computing. A signal that came while every thread
  // blocked it waits and is handled as soon as the watcher starts.
  watcher_ = std::thread([this, set] {
    pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return stopping_; });
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
  });
}

StopSignals::~StopSignals() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  done_.notify_one();
  watcher_.join();
  sigaction(SIGTERM, &previous_term_, nullptr);
  sigaction(SIGINT, &previous_int_, nullptr);
  pthread_sigmask(SIG_SETMASK, &previous_mask_, nullptr);
}

int StopSignals::received() { return g_received.load(); }

}  // namespace rt
