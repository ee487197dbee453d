// StopSignals (trainer/stop_signal.h): SIGTERM and SIGINT sent to the process while threads compute only set the flag,
// on the watcher thread; the handlers and the signal mask come back afterwards. ThreadSanitizer runs it too
// (launch/sanitizers.sh thread).
#include "trainer/stop_signal.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace {

// Whether the calling thread blocks `signal`.
bool blocked(int signal) {
  sigset_t mask;
  pthread_sigmask(SIG_BLOCK, nullptr, &mask);
  return sigismember(&mask, signal) == 1;
}

void wait_for_flag() {
  for (int i = 0; i < 2000 && rt::StopSignals::received() == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

TEST(StopSignal, SignalsToTheProcessOnlySetTheFlagWhileThreadsCompute) {
  for (int signal : {SIGTERM, SIGINT}) {
    struct sigaction before {};
    sigaction(signal, nullptr, &before);
    const bool blocked_before = blocked(signal);
    {
      rt::StopSignals stop;
      EXPECT_EQ(rt::StopSignals::received(), 0);
      EXPECT_TRUE(blocked(signal)) << "the creating thread (and so the compute threads it starts) blocks it";
      std::atomic<bool> done{false};
      std::atomic<int64_t> work{0};
      std::vector<std::thread> compute;
      for (int t = 0; t < 3; ++t)
        compute.emplace_back([&] {
          EXPECT_TRUE(blocked(signal));
          while (!done.load()) work.fetch_add(1);
        });
      while (work.load() < 1000) std::this_thread::yield();  // the threads compute when the signal comes
      ASSERT_EQ(kill(getpid(), signal), 0);
      wait_for_flag();
      EXPECT_EQ(rt::StopSignals::received(), signal);
      done = true;
      for (std::thread& t : compute) t.join();
      EXPECT_GT(work.load(), 0);
    }
    struct sigaction after {};
    sigaction(signal, nullptr, &after);
    EXPECT_EQ(after.sa_handler, before.sa_handler) << "the previous handler is back";
    EXPECT_EQ(blocked(signal), blocked_before) << "the previous mask is back";
  }
}

TEST(StopSignal, EachInstanceStartsClear) {
  {
    rt::StopSignals stop;
    ASSERT_EQ(kill(getpid(), SIGTERM), 0);
    wait_for_flag();
    EXPECT_EQ(rt::StopSignals::received(), SIGTERM);
  }
  rt::StopSignals again;
  EXPECT_EQ(rt::StopSignals::received(), 0) << "a new run starts without the old request";
  ASSERT_EQ(kill(getpid(), SIGINT), 0);
  wait_for_flag();
  EXPECT_EQ(rt::StopSignals::received(), SIGINT);
}

}  // namespace
