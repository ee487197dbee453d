// launch/slurm.sbatch under real Slurm daemons on the local cluster (launch/slurm_local.sh, 2 nodes): it trains across
// both nodes and checkpoints; signalled before its time limit and then requeued by the scheduler, it saves, is
// requeued, resumes and ends at the very losses of an uninterrupted run; and bad input gets one sentence and exit 2.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/test_process.h"

namespace {

namespace fs = std::filesystem;
using rt_test::Outcome;
using rt_test::run_command;

const std::string kSource = RINGTRAIN_SOURCE_DIR;
const std::string kEnv = std::string("env RINGTRAIN_CLUSTER=") + SLURM_CLUSTER + " ";
const std::string kSlurm = kEnv + kSource + "/launch/slurm_local.sh ";
const std::string kScript = kSource + "/launch/slurm.sbatch";
constexpr int kSteps = 80;  // ~40 ms a step on an idle 2-core machine, ~0.5 s under load

Outcome slurm(const std::string& args) { return run_command("timeout 60 " + kSlurm + args); }

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// step -> loss from metrics.jsonl (lines being written are skipped).
std::map<int, double> losses(const fs::path& run) {
  std::map<int, double> out;
  std::ifstream in(run / "metrics.jsonl");
  static const std::regex line(R"(^\{"step":(\d+),"loss":([-0-9.eE+]+),)");
  std::smatch m;
  for (std::string l; std::getline(in, l);)
    if (std::regex_search(l, m, line)) out[std::stoi(m[1])] = std::strtod(m[2].str().c_str(), nullptr);
  return out;
}

int last_step(const fs::path& run) {
  const auto l = losses(run);
  return l.empty() ? 0 : l.rbegin()->first;
}

template <typename F>
bool wait_until(F done, double timeout_s) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (!done()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return true;
}

// One submission of launch/slurm.sbatch: 2 nodes x 2 tasks, configs/tiny.yaml, one thread a rank, metrics every step.
// The destructor cancels the job if a test left it running.
class Job {
 public:
  Job(const fs::path& dir, const std::string& extra_env = "") : dir_(dir) {
    fs::create_directories(dir);
    // Ranks yield while they wait (2 nodes x 2 ranks on 2 cores, twice when two jobs run); the same in every job.
    const std::string env = "OMPI_MCA_mpi_yield_when_idle=1 RINGTRAIN_BIN=" + std::string(RINGTRAIN_BIN) +
                            " RINGTRAIN_CONFIG=" + kSource +
                            "/configs/tiny.yaml RINGTRAIN_SET='train.steps=" + std::to_string(kSteps) +
                            " log.every=1' RINGTRAIN_LOG_DIR=" + run().string() + " " + extra_env;
    submitted_ =
        slurm("exec env " + env + " sbatch --nodes=2 --ntasks-per-node=2 --cpus-per-task=1 --time=10 --output=" +
              (dir / "job.out").string() + " " + kScript);
    std::smatch m;
    if (std::regex_search(submitted_.output, m, std::regex("Submitted batch job (\\d+)"))) id_ = m[1];
  }
  ~Job() {
    if (!id_.empty() && !finished()) slurm("scancel --full --signal=KILL " + id_ + "; " + kSlurm + "scancel " + id_);
  }
  const std::string& id() const { return id_; }
  const Outcome& submitted() const { return submitted_; }
  fs::path run() const { return dir_ / "run"; }
  std::string output() const { return read_file(dir_ / "job.out"); }

  // A field of `scontrol show job` (JobState, Restarts, ExitCode, NodeList, ...); "" when unknown.
  std::string field(const std::string& name) const {
    const Outcome o = slurm("scontrol show job -o " + id_);
    std::smatch m;
    if (std::regex_search(o.output, m, std::regex("(^| )" + name + "=([^ \n]*)"))) return m[2];
    return "";
  }
  bool finished() const {  // a state Slurm's commands could not tell (an unanswered query) is not an end
    const std::string s = field("JobState");
    return s == "COMPLETED" || s == "FAILED" || s == "CANCELLED" || s == "TIMEOUT" || s == "NODE_FAIL" ||
           s == "OUT_OF_MEMORY" || s == "BOOT_FAIL" || s == "DEADLINE" || s == "PREEMPTED";
  }
  bool wait_finished(double timeout_s) const {
    return wait_until([&] { return finished(); }, timeout_s);
  }
  std::string describe() const {
    return "job " + id_ + " state " + field("JobState") + " restarts " + field("Restarts") + " exit " +
           field("ExitCode") + "; its output:\n" + output();
  }

 private:
  fs::path dir_;
  Outcome submitted_;
  std::string id_;
};

class Slurm : public ::testing::Test {
 protected:
  void SetUp() override {
    const Outcome conf = slurm("conf");
    if (conf.code != 0)
      GTEST_SKIP() << "Slurm is not up on the local cluster '" << SLURM_CLUSTER
                   << "' (the ctest fixture slurm_up starts it; it needs root and Debian's slurm-wlm and munge): "
                   << conf.output;
    dir_ = fs::temp_directory_path() / ("ringtrain_slurm_" + std::to_string(getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!dir_.empty() && !HasFailure()) fs::remove_all(dir_);
  }

  // Processes named `comm` inside the cluster's node namespaces.
  static std::vector<pid_t> on_nodes(const std::string& comm) {
    std::vector<pid_t> out;
    for (int i = 0; i < 2; ++i) {
      std::istringstream in(
          run_command("ip netns pids " + std::string(SLURM_CLUSTER) + "-node" + std::to_string(i)).output);
      for (pid_t p; in >> p;) {
        std::ifstream in_comm("/proc/" + std::to_string(p) + "/comm");
        std::string name;
        std::getline(in_comm, name);
        if (name == comm) out.push_back(p);
      }
    }
    return out;
  }

  fs::path dir_;
};

TEST_F(Slurm, BatchScriptTrainsAcrossTwoNodes) {
  const std::string node0 = std::string(SLURM_CLUSTER) + "-node0", node1 = std::string(SLURM_CLUSTER) + "-node1";
  Job job(dir_);
  ASSERT_FALSE(job.id().empty()) << job.submitted().output;
  ASSERT_TRUE(job.wait_finished(120)) << "not finished in 120 s: " << job.describe();
  const std::string out = job.output();
  EXPECT_EQ(job.field("JobState"), "COMPLETED") << job.describe();
  EXPECT_EQ(job.field("ExitCode"), "0:0") << job.describe();
  EXPECT_EQ(job.field("Restarts"), "0") << job.describe();
  EXPECT_EQ(job.field("NodeList"), std::string(SLURM_CLUSTER) + "-node[0-1]") << job.describe();
  // The sizes came from the allocation, and each cp ring stayed inside one node.
  EXPECT_NE(out.find("4 tasks (2+2 per node) = dp 2 x cp 2"), std::string::npos) << out;
  EXPECT_NE(out.find("topology | 2 nodes: " + node0 + " (ranks 0-1), " + node1 +
                     " (ranks 2-3) | cp rings: ranks 0-1 on " + node0 + ", ranks 2-3 on " + node1),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("slurm.sbatch: done: step " + std::to_string(kSteps) + " of " + std::to_string(kSteps)),
            std::string::npos)
      << out;
  // Every step logged, and it learned.
  const auto l = losses(job.run());
  ASSERT_EQ(l.size(), static_cast<size_t>(kSteps)) << read_file(job.run() / "metrics.jsonl");
  EXPECT_EQ(l.begin()->first, 1);
  EXPECT_LT(l.at(kSteps), l.at(1) - 0.5) << "the loss did not fall";
  const Outcome inspect = run_command(std::string(RINGTRAIN_BIN) + " inspect " + (job.run() / "checkpoints").string());
  EXPECT_EQ(inspect.code, 0) << inspect.output;
  EXPECT_NE(inspect.output.find("step        " + std::to_string(kSteps) + " "), std::string::npos) << inspect.output;
  EXPECT_NE(inspect.output.find("4 ranks = dp 2 x cp 2"), std::string::npos) << inspect.output;
  EXPECT_TRUE(wait_until([] { return on_nodes("ringtrain").empty() && on_nodes("slurmstepd").empty(); }, 10))
      << "ranks or step daemons left on the nodes";
}

// The job is signalled as the time limit's --signal=TERM@120 does (SIGTERM to the tasks, not the batch shell: scancel
// --signal=TERM), so the script requeues itself; later the scheduler requeues it (scontrol requeue: SIGTERM to every
// process, KillWait, requeue). An uninterrupted run of the same job runs beside it; every step's loss must match.
TEST_F(Slurm, PreemptedJobIsRequeuedAndEndsAtTheUninterruptedLoss) {
  Job reference(dir_ / "reference");
  ASSERT_FALSE(reference.id().empty()) << reference.submitted().output;
  Job job(dir_ / "preempted");
  ASSERT_FALSE(job.id().empty()) << job.submitted().output;
  const std::regex saved_re("every rank finished step (\\d+), its checkpoint is saved");
  auto saved_steps = [&] {
    std::vector<int> steps;
    const std::string out = job.output();
    for (std::sregex_iterator it(out.begin(), out.end(), saved_re), end; it != end; ++it)
      steps.push_back(std::stoi((*it)[1]));
    return steps;
  };

  // 1. Before the time limit: SIGTERM to the tasks only; they save, srun returns 0, the script requeues the job.
  ASSERT_TRUE(wait_until([&] { return last_step(job.run()) >= 3; }, 90)) << job.describe();
  ASSERT_EQ(slurm("scancel --signal=TERM " + job.id()).code, 0);
  wait_until([&] { return (job.field("Restarts") == "1" && job.field("JobState") == "RUNNING") || job.finished(); },
             90);
  ASSERT_EQ(job.field("Restarts"), "1") << "not requeued after the signal: " << job.describe();
  ASSERT_EQ(job.field("JobState"), "RUNNING") << "not running again after the signal: " << job.describe();
  ASSERT_EQ(saved_steps().size(), 1u) << job.describe();
  const int first = saved_steps()[0];
  const std::string requeueing = "slurm.sbatch: stopped at step " + std::to_string(first) + " of " +
                                 std::to_string(kSteps) + " (signalled before the time limit); requeueing job " +
                                 job.id();
  EXPECT_NE(job.output().find(requeueing), std::string::npos) << job.describe();

  // 2. Preempted by the scheduler: scontrol requeue once the resumed run has gone 3 steps past its checkpoint.
  ASSERT_TRUE(wait_until([&] { return last_step(job.run()) >= first + 3; }, 90)) << job.describe();
  ASSERT_EQ(slurm("scontrol requeue " + job.id()).code, 0) << job.describe();
  ASSERT_TRUE(job.wait_finished(150)) << "not finished in 150 s after the requeue: " << job.describe();
  ASSERT_TRUE(reference.wait_finished(60)) << reference.describe();

  const std::string out = job.output();
  EXPECT_EQ(job.field("JobState"), "COMPLETED") << job.describe();
  EXPECT_EQ(job.field("ExitCode"), "0:0") << job.describe();
  EXPECT_EQ(job.field("Restarts"), "2") << job.describe();
  const std::vector<int> saved = saved_steps();
  ASSERT_EQ(saved.size(), 2u) << job.describe();
  EXPECT_LT(first, saved[1]);
  EXPECT_LT(saved[1], kSteps) << "the second interruption came after the last step";
  // Each start after the first resumed from the checkpoint the interruption saved.
  for (int s : saved) {
    char name[32];
    std::snprintf(name, sizeof name, "step_%08d: step %d,", s, s);
    const std::string resuming = "resuming from " + (job.run() / "checkpoints").string() + "/" + name;
    EXPECT_EQ(count(out, resuming), 1u) << resuming << "\n" << out;
  }
  EXPECT_EQ(count(out, "resuming from "), 2u) << out;

  // The same losses, step for step, as the uninterrupted run (bit for bit: same layout, same threads).
  EXPECT_EQ(reference.field("JobState"), "COMPLETED") << reference.describe();
  const auto want = losses(reference.run()), got = losses(job.run());
  ASSERT_EQ(want.size(), static_cast<size_t>(kSteps)) << reference.describe();
  ASSERT_EQ(got.size(), static_cast<size_t>(kSteps)) << read_file(job.run() / "metrics.jsonl");
  for (const auto& [step, loss] : want) EXPECT_EQ(got.at(step), loss) << "step " << step;
  EXPECT_EQ(got.at(kSteps), want.at(kSteps)) << "final loss";
  const Outcome inspect = run_command(std::string(RINGTRAIN_BIN) + " inspect " + (job.run() / "checkpoints").string());
  EXPECT_EQ(inspect.code, 0) << inspect.output;
  EXPECT_NE(inspect.output.find("step        " + std::to_string(kSteps) + " "), std::string::npos) << inspect.output;
}

TEST_F(Slurm, BadInputGetsOneSentenceAndExitCode2) {
  auto expect_error = [](const Outcome& o, const std::string& prefix, const std::string& fragment) {
    EXPECT_EQ(o.code, 2) << o.output;
    EXPECT_EQ(o.output.rfind(prefix, 0), 0u) << o.output;
    EXPECT_NE(o.output.find(fragment), std::string::npos) << "missing '" << fragment << "' in: " << o.output;
    EXPECT_EQ(count(o.output, "\n"), 1u) << "more than one line: " << o.output;
  };
  const std::string local = kSource + "/launch/slurm_local.sh ";
  expect_error(run_command("env RINGTRAIN_CLUSTER=rtslurm-none " + local + "up"),
               "slurm_local.sh: error: ", "cluster 'rtslurm-none' is not up; start it first");
  expect_error(slurm("up --nodes 3"), "slurm_local.sh: error: ", "has 2 nodes, so --nodes must be 1 to 2, not 3");
  expect_error(slurm("up --nodes two"), "slurm_local.sh: error: ", "--nodes must be a positive number, not 'two'");
  expect_error(slurm("launch"), "slurm_local.sh: error: ", "unknown command 'launch'; valid: up, down");
  expect_error(run_command(kEnv + "PATH=/usr/bin:/bin " + local + "up"),
               "slurm_local.sh: error: ", "Slurm is not installed (missing: munged");
  expect_error(run_command("env -u SLURM_JOB_ID bash " + kScript), "slurm.sbatch: error: ", "not inside a Slurm job");
  // Slurm is still up and idle after all of that.
  EXPECT_EQ(slurm("sinfo -h -o %T").output, "idle\n");

  // In a job: a ring size that does not divide the tasks fails the job with exit code 2 and the sentence.
  Job job(dir_, "RINGTRAIN_CP=3");
  ASSERT_FALSE(job.id().empty()) << job.submitted().output;
  ASSERT_TRUE(job.wait_finished(60)) << job.describe();
  EXPECT_EQ(job.field("JobState"), "FAILED") << job.describe();
  EXPECT_EQ(job.field("ExitCode"), "2:0") << job.describe();
  EXPECT_EQ(
      job.output(),
      "slurm.sbatch: error: RINGTRAIN_CP=3 does not divide the job's 4 tasks; give a divisor of 4 (default 2: every "
      "ring inside one node)\n");
}

}  // namespace
