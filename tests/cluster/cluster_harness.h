// Test fixture for suites that run jobs on the local cluster (launch/cluster.sh): its nodes, their links' byte
// counters, jobs launched through launch/run.sh --local-cluster, and the processes left inside the namespaces.
#pragma once
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/test_process.h"

namespace rt_test {

inline const std::string kTiny = std::string(RINGTRAIN_SOURCE_DIR) + "/configs/tiny.yaml";
inline const std::string kClusterScript = std::string(RINGTRAIN_SOURCE_DIR) + "/launch/cluster.sh";
inline const std::string kRunScript = std::string(RINGTRAIN_SOURCE_DIR) + "/launch/run.sh";
inline const std::string kClusterEnv = std::string("env RINGTRAIN_CLUSTER=") + CLUSTER_NAME;

inline Outcome cluster(const std::string& args) { return run_command(kClusterEnv + " " + kClusterScript + " " + args); }

class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const Outcome nodes = cluster("nodes");
    if (nodes.code != 0) GTEST_SKIP() << "the local cluster is not up (its ctest fixture needs root): " << nodes.output;
    std::istringstream lines(nodes.output);
    for (std::string line; std::getline(lines, line);)
      if (!line.empty()) nodes_.push_back(line);
    ASSERT_GE(nodes_.size(), 2u) << nodes.output;
    dir_ = std::filesystem::temp_directory_path() / ("ringtrain_cluster_" + std::to_string(getpid()) + "_" +
                                                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    clean_nodes();
  }
  // Whatever a test did, the next one finds every link up and no process on the nodes.
  void TearDown() override {
    if (nodes_.empty()) return;
    clean_nodes();
    std::filesystem::remove_all(dir_);
  }

  const std::string& node(size_t i) const { return nodes_.at(i); }

  // Bytes node's link has sent and received so far.
  std::pair<int64_t, int64_t> link_bytes(const std::string& node) const {
    const Outcome o = cluster("bytes " + node);
    EXPECT_EQ(o.code, 0) << o.output;
    std::istringstream in(o.output);
    std::pair<int64_t, int64_t> b{0, 0};
    in >> b.first >> b.second;
    return b;
  }

  // The ringtrain train command launch/run.sh --local-cluster runs with configs/tiny.yaml, metrics every step into
  // `run`, and `args` (which start with --set or another option).
  std::string train_command(const std::filesystem::path& run, const std::string& args) const {
    return kClusterEnv + " " + kRunScript + " --local-cluster train --config " + kTiny +
           " --set log.every=1 log.dir=" + run.string() + " " + args;
  }
  Outcome train(const std::filesystem::path& run, const std::string& args) const {
    return run_command("timeout 300 " + train_command(run, args));
  }

  // A shell command run inside node i's namespaces.
  Outcome on_node(size_t i, const std::string& command) const {
    return cluster("exec " + node(i) + " sh -c '" + command + "'");
  }

  // Pids of the processes inside the nodes' namespaces (daemons, ranks).
  std::vector<pid_t> processes_on_nodes() const {
    std::vector<pid_t> pids;
    for (const std::string& n : nodes_) {
      std::istringstream in(run_command("ip netns pids " + n).output);
      for (pid_t p; in >> p;) pids.push_back(p);
    }
    return pids;
  }
  // Waits up to timeout_s for the nodes to hold no process; true when they hold none.
  bool nodes_empty_within(double timeout_s) const {
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    while (!processes_on_nodes().empty()) {
      if (std::chrono::steady_clock::now() > end) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return true;
  }

  // The pid of MPI world rank `rank` among the processes on the nodes, or -1.
  pid_t rank_pid(int rank) const {
    const std::string want = "OMPI_COMM_WORLD_RANK=" + std::to_string(rank);
    for (pid_t p : processes_on_nodes()) {
      std::ifstream comm("/proc/" + std::to_string(p) + "/comm");
      std::string name;
      std::getline(comm, name);
      if (name != "ringtrain") continue;
      std::ifstream env("/proc/" + std::to_string(p) + "/environ");
      std::string entry;
      while (std::getline(env, entry, '\0'))
        if (entry == want) return p;
    }
    return -1;
  }

  std::vector<std::string> nodes_;
  std::filesystem::path dir_;

 private:
  void clean_nodes() const {
    for (const std::string& n : nodes_) cluster("link " + n + " up");
    for (pid_t p : processes_on_nodes()) kill(p, SIGKILL);
    nodes_empty_within(10);
  }
};

}  // namespace rt_test
