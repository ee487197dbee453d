// The MPI watchdog on one host: a collective that waits past parallel.comm_timeout_s ends the job within seconds, and
// every live rank's line names the culprit as it is — stopped, computing (stuck in a loop), or in another operation.
// Waits shorter than the deadline change nothing.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "tests/test_process.h"

namespace {

using rt_test::contains;

struct Ended {
  rt_test::Outcome outcome;
  double seconds;
};

Ended run_job(const std::string& mode) {
  const auto start = std::chrono::steady_clock::now();
  rt_test::Outcome o = rt_test::run_command(std::string("timeout 120 ") + rt_test::mpiexec() +
                                            " -n 3 --oversubscribe --allow-run-as-root --mca btl self,vader "
                                            "--bind-to none " +
                                            rt_test::program(WATCHDOG_BIN) + " " + mode);
  return {o, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()};
}

// The line rank `rank` printed, or "".
std::string line_of(const std::string& output, int rank) {
  const size_t at = output.find("ringtrain: fatal: rank " + std::to_string(rank) + " on ");
  return at == std::string::npos ? "" : output.substr(at, output.find('\n', at) - at);
}

// Deadline 2 s + probe 1 s + grace 1 s + teardown: well under the 60 s the culprit would otherwise take.
constexpr double kEndWithin = 15;

TEST(MpiWatchdog, StoppedRankIsNamedByEveryLiveRank) {
  const Ended e = run_job("stopped");
  EXPECT_NE(e.outcome.code, 0) << e.outcome.output;
  EXPECT_NE(e.outcome.code, 124) << "hung: " << e.outcome.output;
  EXPECT_LT(e.seconds, kEndWithin) << e.outcome.output;
  for (int rank : {0, 1})
    EXPECT_TRUE(
        contains(line_of(e.outcome.output, rank),
                 {"waited ", " in all_reduce_sum of 1 doubles over ranks 0-2 at step 7: no answer from rank 2 on ",
                  "(stopped, dead, or cut off by a link that is down)", "; ending the job"}))
        << e.outcome.output;
}

TEST(MpiWatchdog, RankStuckComputingIsNamedAsSuch) {
  const Ended e = run_job("stuck");
  EXPECT_NE(e.outcome.code, 0) << e.outcome.output;
  EXPECT_LT(e.seconds, kEndWithin) << e.outcome.output;
  const std::string line = line_of(e.outcome.output, 0) + line_of(e.outcome.output, 1);
  EXPECT_TRUE(contains(line, {"rank 2 on ", " answers but has been outside communication for ", " s at step 7",
                              "(still computing, or stuck)"}))
      << e.outcome.output;
  // The stuck rank hears the verdict too and says where it was.
  EXPECT_TRUE(contains(line_of(e.outcome.output, 2), {"was outside communication at step 7", "found by rank "}))
      << e.outcome.output;
}

TEST(MpiWatchdog, RanksInDifferentOperationsAreListed) {
  const Ended e = run_job("mismatch");
  EXPECT_NE(e.outcome.code, 0) << e.outcome.output;
  EXPECT_LT(e.seconds, kEndWithin) << e.outcome.output;
  EXPECT_TRUE(
      contains(e.outcome.output, {"every rank answers and waits in communication, so the ranks are in different "
                                  "operations",
                                  "in barrier over ranks 0-2"}))  // rank 2's: whichever rank's deadline fires first
      << e.outcome.output;
}

TEST(MpiWatchdog, WaitsShorterThanTheDeadlineAreNotFailures) {
  const Ended e = run_job("healthy");
  EXPECT_EQ(e.outcome.code, 0) << e.outcome.output;
  EXPECT_TRUE(contains(e.outcome.output, {"healthy: sum 9"}));
  EXPECT_EQ(e.outcome.output.find("ringtrain: fatal"), std::string::npos) << e.outcome.output;
}

}  // namespace
