// The NCCL watchdog: an exchange whose peer never answers ends the whole job with the watchdog's message, long before
// the job's own time limit. Needs two GPUs (skips, with the reason, otherwise).
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "core/backend.h"
#include "tests/test_process.h"

namespace {

TEST(NcclWatchdog, HungExchangeEndsTheJobWithItsMessage) {
  const std::string why = rt::device_unavailable_reason(rt::Device::cuda);
  if (!why.empty()) GTEST_SKIP() << why;
  if (rt::device_count(rt::Device::cuda) < 2) GTEST_SKIP() << "one GPU is visible; this test needs two";
  const auto start = std::chrono::steady_clock::now();
  const rt_test::Outcome o = rt_test::run_command(std::string("timeout 120 ") + rt_test::mpiexec() +
                                                  " -n 2 --oversubscribe --allow-run-as-root --mca btl self,vader " +
                                                  rt_test::program(WATCHDOG_BIN));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_NE(o.code, 0) << o.output;
  EXPECT_NE(o.code, 124) << "the job hung until the timeout: " << o.output;
  EXPECT_NE(o.output.find("has not completed"), std::string::npos) << o.output;
  EXPECT_NE(o.output.find("a peer rank is probably stuck or dead"), std::string::npos) << o.output;
  EXPECT_NE(o.output.find("NCCL communicator aborted"), std::string::npos) << o.output;
  EXPECT_LT(seconds, 45) << "the watchdog (timeout 2 s) should end the job well before rank 1's 60 s sleep";
}

}  // namespace
