// `ringtrain calibrate`: this machine's GEMM, flash-attention and memory rates over the model's shapes and its MPI
// links, measured, written as a cluster file the planner reads (planner/cluster.h).
#include "trainer/calibrate.h"

#include <mpi.h>
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "core/check.h"
#include "core/cpu/cpu_features.h"
#include "core/timer.h"
#include "planner/cluster.h"
#include "planner/layout.h"
#include "planner/time_model.h"
#include "trainer/child_command.h"
#include "trainer/hostfile.h"
#include "trainer/metrics.h"

namespace rt {

namespace {

std::string today() {
  std::time_t now = std::time(nullptr);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d", std::gmtime(&now));
  return text;
}

std::string host_name() {
  char name[256] = {};
  gethostname(name, sizeof name - 1);
  return name;
}

int64_t meminfo_kib(const std::string& key) {
  std::ifstream in("/proc/meminfo");
  std::string k;
  int64_t v = 0;
  std::string unit;
  while (in >> k >> v >> unit)
    if (k == key + ":") return v;
  return 0;
}

// The best timing of `run` (after one warm-up) over at least `reps` runs and `min_s` seconds, in seconds: the host
// may be shared, and its clock ramps.
double best_seconds(int reps, const std::function<void()>& run, double min_s = 1.5) {
  run();
  double best = 1e300;
  Timer total;
  for (int i = 0; i < reps || total.seconds() < min_s; ++i) {
    Timer t;
    run();
    best = std::min(best, t.seconds());
  }
  return best;
}

struct ComputeRates {
  double gemm_fp32 = 0, gemm_bf16 = 0, attention_fp32 = 0, attention_bf16 = 0;  // TFLOP/s per core
  double memory_gbs = 0;         // the node's: the bytes of a step's elementwise work and AdamW per second
  double thread_efficiency = 1;  // per core, a rank of every core's threads against 1-thread ranks
  int64_t runtime_overhead = 0;  // bytes resident that are not tensors, after the measurements
};

// The runs calibrate measures its rates in: the config's model with 1 layer (every layer has the same shapes), one
// sequence of 4096 tokens per rank. The rates come from a rank of 1 thread on every core (up to 16; dp over them), as
// most layouts run: a core's rate while the others work too. The thread efficiency comes from one rank running every
// core as threads. The copy task, nothing saved.
constexpr int64_t kRunTokens = 4096, kRunSteps = 8, kRunMaxRanks = 16;
int rates_run_ranks(int cores) { return static_cast<int>(std::min<int64_t>(cores, kRunMaxRanks)); }
Config rates_run_config(const Config& config, int ranks, int threads, bool bf16) {
  Config c = config;
  c.model.num_hidden_layers = 1;
  c.train.seq_len = kRunTokens;
  c.train.batch_size = ranks;
  c.train.micro_batch_size = 1;
  c.train.steps = kRunSteps;
  c.train.warmup_steps = 1;
  c.train.eval_every = 0;
  c.train.stages = "";
  c.train.recompute = "none";
  c.train.precision = bf16 ? "bf16" : "fp32";
  c.train.device = "cpu";
  c.train.threads = threads;
  c.parallel.cp = c.parallel.ulysses = 1;
  c.parallel.dp = ranks;
  c.data.task = "copy";
  c.data.path = "";
  c.data.document_mask = false;
  c.checkpoint.every = 0;
  c.log.every = 1;
  c.log.tensorboard = false;
  return c;
}

// Rank 0's mean seconds per step in each part (metrics.jsonl: gemm_ms, attention_ms and the rest) over the steps
// after the first of `ringtrain train` running `run`. The mean, not the fastest: a shared host's speed moves by 10-20%
// from one short step to the next, and a long step spans those moves.
StepSeconds mean_step_parts(const Config& run) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("ringtrain_calibrate_rates_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::filesystem::path yaml = dir / "config.yaml";
  std::ofstream(yaml) << config_to_yaml(run);
  const int64_t ranks = run.parallel.dp;
  const std::string mpirun = ranks == 1 ? ""
                                        : "timeout 600 mpirun -n " + std::to_string(ranks) +
                                              " --oversubscribe --allow-run-as-root --bind-to none --mca btl "
                                              "self,vader ";
  const ChildResult result = child_command_run(mpirun + "'" + child_self_path() + "' train --config '" + yaml.string() +
                                               "' --set log.dir='" + (dir / "run").string() + "'");
  const std::vector<StepSeconds> steps = metrics_step_seconds((dir / "run").string());
  std::filesystem::remove_all(dir);
  RT_USER_CHECK(result.status == 0 && !steps.empty() && steps.front().has_parts,
                "calibrate's " + run.train.precision + " training run failed (exit " + std::to_string(result.status) +
                    "): " + result.output);
  StepSeconds mean;
  for (double StepSeconds::*part : {&StepSeconds::gemm, &StepSeconds::attention, &StepSeconds::other}) {
    double sum = 0;
    for (const StepSeconds& s : steps) sum += s.*part;
    mean.*part = std::max(sum / static_cast<double>(steps.size()), 1e-9);
  }
  return mean;
}

// The rates of one precision as a training step sees them (cold caches, the model's real calls): each part's mean
// time in rates_run_config divides that part's work in the planner's model (plan_step_work).
void measure_rates_in_run(const Config& config, int cores, bool bf16, ComputeRates& r) {
  const int ranks = rates_run_ranks(cores);
  const Config run = rates_run_config(config, ranks, 1, bf16);
  const StepSeconds mean = mean_step_parts(run);
  const StepWork w = plan_step_work(plan_layout_of(run, 1));  // one rank's; each rank has 1 core
  (bf16 ? r.gemm_bf16 : r.gemm_fp32) = w.gemm_flops / mean.gemm / 1e12;
  (bf16 ? r.attention_bf16 : r.attention_fp32) = w.attention_flops / mean.attention / 1e12;
  if (!bf16)  // the node's: every rank moves its bytes in that time
    r.memory_gbs = ranks * (w.elementwise_bytes + w.optimizer_bytes) / mean.other / 1e9;
}

// One fp32 rank of `cores` threads: its GEMM and attention time predicted from the 1-thread rates (times the cores)
// over the time it took, at most 1 (1 on one core). Threads share one process's caches and queues and never gain
// compute over a process per core; above 1 is the host's speed moving between the two runs (a shared host here
// measured 1.43 once, between values of 0.83-1.01).
double measure_thread_efficiency(const Config& config, int cores, const ComputeRates& r) {
  if (cores <= 1) return 1.0;
  const Config run = rates_run_config(config, 1, cores, false);
  const StepSeconds mean = mean_step_parts(run);
  const StepWork w = plan_step_work(plan_layout_of(run, 1));
  const double predicted = (w.gemm_flops / r.gemm_fp32 + w.attention_flops / r.attention_fp32) / 1e12 / cores;
  return std::min(1.0, predicted / (mean.gemm + mean.attention));
}

ComputeRates measure_compute(const Config& config, int cores) {
  ComputeRates r;
  measure_rates_in_run(config, cores, false, r);
  r.thread_efficiency = measure_thread_efficiency(config, cores, r);  // beside the fp32 rates it divides by
  measure_rates_in_run(config, cores, true, r);
  return r;
}

// What a training process holds besides its tensors (code, MPI, oneDNN, OpenMP stacks, heap slack): the resident
// high-water mark of a two-step run of a small model less its counted tensor peak.
int64_t measure_runtime_overhead() {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("ringtrain_calibrate_run_" + std::to_string(getpid()));
  const ChildResult run = child_command_run(
      "'" + child_self_path() +
      "' train --set model.hidden_size=128 --set model.num_hidden_layers=2 --set "
      "model.intermediate_size=256 --set train.seq_len=256 --set train.batch_size=1 --set train.steps=2 --set "
      "checkpoint.every=0 --set log.tensorboard=false --set log.dir='" +
      dir.string() + "'");
  std::filesystem::remove_all(dir);
  std::smatch m;
  RT_USER_CHECK(run.status == 0 && std::regex_search(run.output, m,
                                                     std::regex("tensors ([0-9]+) bytes \\(rank [0-9]+\\), "
                                                                "resident ([0-9]+) bytes")),
                "calibrate's training run failed (exit " + std::to_string(run.status) + "): " + run.output);
  return std::stoll(m[2]) - std::stoll(m[1]);
}

// Waits at a barrier without spinning, so the cores stay free for whoever measures.
void idle_barrier() {
  MPI_Request request;
  MPI_Ibarrier(MPI_COMM_WORLD, &request);
  for (int done = 0; !done;) {
    MPI_Test(&request, &done, MPI_STATUS_IGNORE);
    if (!done) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

struct Link {
  double gbs = 0, us = 0;
};

// Ranks a and b exchange messages both ways at once, as ring steps do: the latency of 8 bytes (median of 200) and
// the bandwidth of 16 MiB each way (best of 6). Collective: the other ranks wait.
Link measure_pair(int a, int b) {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  Link link;
  if (rank == a || rank == b) {
    const int peer = rank == a ? b : a;
    std::vector<char> small_send(8), small_recv(8);
    std::vector<double> times;
    for (int i = 0; i < 220; ++i) {
      Timer t;
      MPI_Sendrecv(small_send.data(), 8, MPI_BYTE, peer, 7, small_recv.data(), 8, MPI_BYTE, peer, 7, MPI_COMM_WORLD,
                   MPI_STATUS_IGNORE);
      if (i >= 20) times.push_back(t.seconds());
    }
    std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
    const double latency = times[times.size() / 2];
    const int bytes = 16 << 20;
    std::vector<char> send(bytes, 1), recv(bytes);
    double best = 1e300;
    for (int i = 0; i < 7; ++i) {
      Timer t;
      MPI_Sendrecv(send.data(), bytes, MPI_BYTE, peer, 8, recv.data(), bytes, MPI_BYTE, peer, 8, MPI_COMM_WORLD,
                   MPI_STATUS_IGNORE);
      if (i > 0) best = std::min(best, t.seconds());
    }
    link.us = latency * 1e6;
    link.gbs = bytes / best / 1e9;
  }
  idle_barrier();
  double values[2] = {link.gbs, link.us};
  MPI_Bcast(values, 2, MPI_DOUBLE, a, MPI_COMM_WORLD);
  return {values[0], values[1]};
}

// 16 MiB all-reduced over every rank: bus bandwidth (2 (n-1)/n bytes / time, NCCL's convention) and 8-byte latency.
Link measure_all_reduce() {
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  std::vector<float> buf(4 << 20, 1.f), small(2, 1.f);
  const double s = best_seconds(
      4, [&] { MPI_Allreduce(MPI_IN_PLACE, buf.data(), 4 << 20, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD); },
      0.0);  // collective: the same count on every rank
  const double l = best_seconds(
      50, [&] { MPI_Allreduce(MPI_IN_PLACE, small.data(), 2, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD); }, 0.0);
  return {2.0 * (size - 1) / size * 16.0 * (1 << 20) / s / 1e9, l * 1e6};
}

// The links between the ranks of this job: a pair on rank 0's host and a pair across hosts, where the ranks have
// them, and the all-reduce over all. Rank 0 gets the JSON.
nlohmann::json measure_links() {
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  std::string mine = host_name();
  mine.resize(256, '\0');
  std::vector<char> all(256 * static_cast<size_t>(size));
  MPI_Allgather(mine.data(), 256, MPI_CHAR, all.data(), 256, MPI_CHAR, MPI_COMM_WORLD);
  std::vector<std::string> hosts;
  for (int i = 0; i < size; ++i) hosts.emplace_back(all.data() + 256 * i);
  int same = -1, other = -1;
  for (int i = 1; i < size; ++i) {
    if (hosts[i] == hosts[0] && same < 0) same = i;
    if (hosts[i] != hosts[0] && other < 0) other = i;
  }
  nlohmann::json j;
  j["hosts"] = std::set<std::string>(hosts.begin(), hosts.end()).size();
  j["ranks"] = size;
  if (same > 0) {
    const Link l = measure_pair(0, same);
    j["intra_node"] = {{"bandwidth_gbs", l.gbs}, {"latency_us", l.us}, {"pair", {0, same}}};
  }
  if (other > 0) {
    const Link l = measure_pair(0, other);
    j["inter_node"] = {{"bandwidth_gbs", l.gbs}, {"latency_us", l.us}, {"pair", {0, other}}};
  }
  if (size > 1) {
    const Link l = measure_all_reduce();
    j["all_reduce"] = {{"bus_gbs", l.gbs}, {"latency_us", l.us}, {"ranks", size}};
  }
  return j;
}

// Runs this program under mpirun (`mpirun_args` before it) to measure the links; returns their JSON. The child
// mpirun gets an environment without this singleton's Open MPI variables.
nlohmann::json links_by_mpirun(const std::string& mpirun_args) {
  const std::filesystem::path json =
      std::filesystem::temp_directory_path() / ("ringtrain_calibrate_" + std::to_string(getpid()) + ".json");
  const ChildResult run = child_command_run("timeout 120 mpirun " + mpirun_args + " '" + child_self_path() +
                                            "' calibrate --links-json '" + json.string() + "'");
  std::ifstream in(json);
  RT_USER_CHECK(run.status == 0 && in, "calibrate's link measurement under `mpirun " + mpirun_args + "` failed (exit " +
                                           std::to_string(run.status) + "): " + run.output);
  nlohmann::json j = nlohmann::json::parse(in);
  std::filesystem::remove(json);
  return j;
}

Measured measured(double value, const std::string& what) { return {value, "measured: " + what}; }

}  // namespace

void calibrate_run(const Config& config, const CalibrateOptions& options, std::FILE* out) {
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (!options.links_json.empty()) {  // a child of links_by_mpirun
    const nlohmann::json j = measure_links();
    if (rank == 0) std::ofstream(options.links_json) << j.dump() << "\n";
    return;
  }
  Timer total;
  const int cores = omp_get_num_procs();
  ComputeRates r;
  if (rank == 0) {
    r = measure_compute(config, cores);
    r.runtime_overhead = measure_runtime_overhead();
    std::fprintf(out,
                 "calibrate | %s, %d cores | GEMM %.3f / %.3f TFLOP/s per core (fp32 / bf16) | attention %.3f / "
                 "%.3f | %d threads at %.0f%% per core | memory %.1f GB/s | %.1f s\n",
                 cpu_model_name().c_str(), cores, r.gemm_fp32, r.gemm_bf16, r.attention_fp32, r.attention_bf16, cores,
                 100 * r.thread_efficiency, r.memory_gbs, total.seconds());
    std::fflush(out);
  }
  if (size > 1) idle_barrier();
  nlohmann::json links;
  if (size > 1) {
    links = measure_links();
  } else {
    links = links_by_mpirun("-n 2 --oversubscribe --allow-run-as-root --bind-to none --mca btl self,vader");
    if (!options.hostfile.empty()) {
      const size_t nodes = hostfile_load(options.hostfile).size();
      std::string args = "--hostfile '" + options.hostfile + "' --map-by node -n " + std::to_string(2 * nodes) +
                         " --allow-run-as-root --bind-to none --mca btl self,vader,tcp --mca btl_tcp_flags "
                         "send,inplace,need-ack,need-csum";
      if (!options.agent.empty()) args += " --mca plm_rsh_agent '" + options.agent + "'";
      const nlohmann::json across = links_by_mpirun(args);
      RT_USER_CHECK(
          across.contains("inter_node"),
          "--hostfile " + options.hostfile + ": all ranks ran on one host; give a hostfile of 2 or more nodes");
      links["inter_node"] = across["inter_node"];
      links["hosts"] = across["hosts"];
      links["all_reduce"] = across["all_reduce"];
    }
  }
  if (rank != 0) return;

  const std::string where = "ringtrain calibrate on " + host_name() + " (" + cpu_model_name() + "), " + today();
  ClusterSpec c;
  c.kind = "cpu";
  c.name = options.name.empty() ? "this machine: " + cpu_model_name() + ", " + std::to_string(cores) + " cores"
                                : options.name;
  c.nodes = links.value("hosts", 1);
  c.devices_per_node = cores;
  const double usable_gib = (meminfo_kib("MemTotal") / 1048576.0) - 1.0;
  c.memory_gib =
      measured(usable_gib, "/proc/meminfo MemTotal less 1 GiB for the OS, mpirun and the page cache, " + where);
  const std::string in_run =
      "inside " + std::to_string(kRunSteps) + " steps of `ringtrain train` (the config's model " + "with 1 layer, " +
      std::to_string(kRunTokens) + " tokens per rank, " + std::to_string(rates_run_ranks(cores)) +
      " ranks x 1 thread, dp), the mean step after " + "the first (rank 0's)";
  const std::string per_core = ", per core, " + where;
  c.gemm_tflops_fp32 = measured(r.gemm_fp32, "fp32 GEMM FLOPs over their time " + in_run + per_core);
  c.gemm_tflops_bf16 = measured(r.gemm_bf16, "bf16 GEMM FLOPs over their time " + in_run + per_core);
  c.attention_tflops_fp32 = measured(
      r.attention_fp32, "fp32 flash attention FLOPs (forward+backward, causal) over their time " + in_run + per_core);
  c.attention_tflops_bf16 = measured(
      r.attention_bf16, "bf16 flash attention FLOPs (forward+backward, causal) over their time " + in_run + per_core);
  c.thread_efficiency =
      measured(r.thread_efficiency,
               cores <= 1 ? "one core, no threads to share, " + where
                          : "fp32 GEMM and attention time of 1 rank x " + std::to_string(cores) + " threads (" +
                                std::to_string(kRunSteps) + " steps of " + std::to_string(kRunTokens) +
                                " tokens, the mean after the first) predicted from the 1-thread rates x " +
                                std::to_string(cores) + " cores, over its measured time (at most 1), " + where);
  c.memory_bandwidth_gbs =
      measured(r.memory_gbs,
               "the bytes the step's elementwise work and AdamW move (planner/time_model.cpp) over the rest of "
               "the step, fp32 " +
                   in_run + ", " + where);
  c.runtime_overhead_mib = measured(r.runtime_overhead / 1048576.0,
                                    "resident high-water less counted tensors of a 2-step training run, " + where);
  auto link_of = [&](const nlohmann::json& j, const std::string& what) {
    LinkSpec l;
    l.bandwidth_gbs =
        measured(j["bandwidth_gbs"].get<double>(), "16 MiB MPI_Sendrecv both ways at once, " + what + ", " + where);
    l.latency_us =
        measured(j["latency_us"].get<double>(), "8-byte MPI_Sendrecv, median of 200, " + what + ", " + where);
    return l;
  };
  RT_USER_CHECK(links.contains("intra_node"),
                "calibrate under mpirun needs 2 ranks on rank 0's node to measure "
                "intra_node; start 2 per node (e.g. --map-by node -n 2 x nodes)");
  c.intra_node = link_of(links["intra_node"], "2 ranks of one node");
  if (links.contains("inter_node")) {
    c.inter_node = link_of(links["inter_node"], "ranks on 2 nodes");
    c.has_inter_node = true;
  }
  const std::string path = options.out.empty() ? "configs/clusters/local.yaml" : options.out;
  std::ofstream file(path);
  RT_USER_CHECK(static_cast<bool>(file), "calibrate cannot write " + path + "; give --out a writable path");
  file << "# Written by `ringtrain calibrate` (" << where << ").\n";
  if (links.contains("all_reduce"))
    file << "# All-reduce of 16 MiB over " << links["all_reduce"]["ranks"].get<int>() << " ranks: bus bandwidth "
         << links["all_reduce"]["bus_gbs"].get<double>() << " GB/s, 8-byte latency "
         << links["all_reduce"]["latency_us"].get<double>() << " us.\n";
  file << cluster_to_yaml(c);
  file.close();
  RT_USER_CHECK(static_cast<bool>(file), "calibrate could not finish writing " + path);
  std::fprintf(out, "calibrate | intra_node %.2f GB/s, %.1f us", c.intra_node.bandwidth_gbs.value,
               c.intra_node.latency_us.value);
  if (c.has_inter_node)
    std::fprintf(out, " | inter_node %.3f GB/s, %.1f us", c.inter_node.bandwidth_gbs.value,
                 c.inter_node.latency_us.value);
  std::fprintf(out, " | wrote %s in %.1f s\n", path.c_str(), total.seconds());
}

}  // namespace rt
