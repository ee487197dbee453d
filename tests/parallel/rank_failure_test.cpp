// A rank that fails brings the whole mpirun job down with its message instead of leaving the others hanging.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

#include "tests/test_paths.h"

namespace {

TEST(RankFailure, OneFailingRankEndsTheJobWithItsMessage) {
  const std::string cmd = std::string("timeout 120 ") + rt_test::mpiexec() +
                          " -n 2 --oversubscribe --allow-run-as-root --mca btl self,vader " +
                          rt_test::program(FAILING_BIN) + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  const int status = pclose(pipe);
  ASSERT_TRUE(WIFEXITED(status)) << out;
  EXPECT_NE(WEXITSTATUS(status), 124) << "the job hung until the timeout: " << out;
  EXPECT_NE(WEXITSTATUS(status), 0) << out;
  EXPECT_NE(out.find("ringtrain: fatal: check failed: rank != 1: injected failure"), std::string::npos) << out;
  EXPECT_NE(out.find("rank 1 on "), std::string::npos) << out;
}

}  // namespace
