// The local cluster's life (up makes nodes with their own hostnames and addresses, down leaves nothing) and the
// launchers' answers to bad input: one sentence naming what is wrong, exit code 2, nothing started.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/cluster/cluster_harness.h"

namespace rt {
namespace {

namespace fs = std::filesystem;
using rt_test::contains;
using rt_test::Outcome;
using rt_test::run_command;

const std::string kScript = rt_test::kClusterScript;

bool is_root() { return geteuid() == 0; }

// A cluster of its own (not the fixture's): three nodes, each with its hostname, address and hostfile line; after
// down, no namespace, link, state file or process of it remains.
TEST(LocalCluster, UpMakesNodesAndDownLeavesNothing) {
  if (!is_root()) GTEST_SKIP() << "the local cluster needs root";
  const std::string env = "env RINGTRAIN_CLUSTER=rtlife ";
  run_command(env + kScript + " down");
  Outcome up = run_command(env + kScript + " up 3 --slots 4");
  ASSERT_EQ(up.code, 0) << up.output;
  EXPECT_EQ(run_command(env + kScript + " exec rtlife-node2 hostname").output, "rtlife-node2\n");
  EXPECT_TRUE(
      contains(run_command(env + kScript + " exec rtlife-node1 ip -4 -o addr show eth0").output, {"10.213.0.2/24"}));
  const Outcome hostfile = run_command("cat $(" + env + kScript + " hostfile)");
  EXPECT_EQ(hostfile.output, "rtlife-node0 slots=4\nrtlife-node1 slots=4\nrtlife-node2 slots=4\n");
  EXPECT_EQ(run_command(env + kScript + " check").code, 0);
  // The same name twice is refused; a process on a node is ended by down.
  Outcome again = run_command(env + kScript + " up 2");
  EXPECT_EQ(again.code, 2);
  EXPECT_TRUE(contains(again.output, {"cluster 'rtlife' is already up with 3 nodes", "down first"}));
  run_command(env + kScript + " exec rtlife-node1 sleep 600 > /dev/null 2>&1 &");
  // down must find it on the node: wait until it runs there (else down may finish before the exec has begun).
  for (int i = 0; i < 100 && run_command("ps -eo args= | grep -cx 'sleep 600' || true").output == "0\n"; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  Outcome down = run_command(env + kScript + " down");
  EXPECT_EQ(down.code, 0) << down.output;
  EXPECT_EQ(run_command("ip netns list | grep -c '^rtlife-' || true").output, "0\n");
  EXPECT_FALSE(fs::exists("/run/ringtrain-cluster/rtlife"));
  EXPECT_FALSE(fs::exists("/etc/netns/rtlife-node0"));
  EXPECT_EQ(run_command("ps -eo args= | grep -cx 'sleep 600' || true").output, "0\n");
  EXPECT_EQ(run_command(env + kScript + " nodes").code, 2);
}

TEST(LocalCluster, BadRequestsSaySoWithExitCode2) {
  auto expect_error = [](const std::string& args, std::initializer_list<std::string> fragments) {
    const Outcome o = rt_test::cluster(args);
    EXPECT_EQ(o.code, 2) << args << ": " << o.output;
    EXPECT_TRUE(contains(o.output, fragments)) << args;
    EXPECT_EQ(std::count(o.output.begin(), o.output.end(), '\n'), 1) << "one line: " << o.output;
  };
  expect_error("up 0", {"up needs a node count from 1 to 64, not '0'"});
  expect_error("up two", {"not 'two'"});
  expect_error("up 2 --slots 0", {"--slots must be a positive number"});
  expect_error("frobnicate", {"unknown command 'frobnicate'; valid: up, down"});
  expect_error("shape --delay 10ms", {"no netem, so latency and packet loss cannot be emulated"});
  const Outcome nodes = rt_test::cluster("nodes");
  if (nodes.code != 0) return;  // the fixture's cluster is not up: the rest needs nodes
  expect_error("exec nosuch-node true", {"'nosuch-node' is not a node of cluster"});
  expect_error("shape 10 gigabits", {"rate '10' is not a tc rate"});
  expect_error("link " + std::string(CLUSTER_NAME) + "-node1 sideways", {"link NODE up|down"});
}

TEST(LocalCluster, WithoutRootItSaysSo) {
  if (!is_root()) {
    const Outcome o = run_command(kScript + " up 2");
    EXPECT_EQ(o.code, 2);
    EXPECT_TRUE(contains(o.output, {"needs root"}));
    return;
  }
  const Outcome o = run_command("setpriv --reuid=65534 --regid=65534 --clear-groups " + kScript + " up 2");
  EXPECT_EQ(o.code, 2) << o.output;
  EXPECT_TRUE(contains(o.output, {"the local cluster needs root", "run it as root or with sudo"}));
}

class LaunchErrors : public rt_test::ClusterTest {
 protected:
  Outcome run(const std::string& launcher, const std::string& args = "--set parallel.cp=2 parallel.dp=2") {
    return run_command("timeout 120 " + rt_test::kClusterEnv + " " + rt_test::kRunScript + " " + launcher +
                       " train --config " + rt_test::kTiny + " " + args);
  }
  std::string hostfile(const std::string& text) {
    const fs::path p = dir_ / "hosts";
    std::ofstream(p) << text;
    return p.string();
  }
  void expect_error(const Outcome& o, std::initializer_list<std::string> fragments) {
    EXPECT_EQ(o.code, 2) << o.output;
    EXPECT_TRUE(contains(o.output, fragments));
    EXPECT_EQ(o.output.find("step 1/"), std::string::npos) << "it trained: " << o.output;
  }
  const std::string agent_ = "--agent '" + rt_test::kClusterEnv + " " + rt_test::kClusterScript + " agent'";
};

TEST_F(LaunchErrors, HostfileThatDoesNotFitTheRankCount) {
  expect_error(run("--hostfile " + hostfile(node(0) + " slots=2\n" + node(1) + " slots=1\n") + " " + agent_),
               {"has 3 slots on 2 nodes but the job needs parallel.cp x parallel.dp x parallel.ulysses = 2 x 2 x 1 = 4 ranks"});
  expect_error(run("--hostfile " + hostfile(node(0) + " slots=two\n")), {"slots must be a positive number"});
  expect_error(run("--hostfile " + hostfile("# nothing\n")), {"names no node"});
  expect_error(run("--hostfile /nonexistent/hosts"), {"hostfile '/nonexistent/hosts' does not exist"});
  expect_error(run("--local-cluster", "--set parallel.cp=4 parallel.dp=2"),
               {"has 4 slots on 2 nodes but the job needs parallel.cp x parallel.dp x parallel.ulysses = 4 x 2 x 1 = 8 ranks"});
}

TEST_F(LaunchErrors, NodeThatCannotBeReached) {
  expect_error(run("--hostfile " + hostfile(node(0) + " slots=2\nno-such-node slots=2\n") + " " + agent_),
               {"node 'no-such-node' of hostfile", "cannot be reached through", "not a node of cluster"});
  ASSERT_EQ(rt_test::cluster("link " + node(1) + " down").code, 0);
  expect_error(run("--local-cluster"), {"node " + node(1), "does not answer " + node(0) + " over the bridge"});
}

TEST_F(LaunchErrors, MissingAgent) {
  expect_error(run("--hostfile " + hostfile(node(0) + " slots=4\n") + " --agent no-such-agent"),
               {"with 'no-such-agent', which is not installed"});
}

TEST_F(LaunchErrors, BadConfigIsRingtrainsOwnMessage) {
  expect_error(run("--local-cluster", "--set parallel.cp=3 parallel.dp=1 train.precision=fp16"),
               {"train.precision 'fp16' is not known; valid: fp32, bf16"});
}

}  // namespace
}  // namespace rt
