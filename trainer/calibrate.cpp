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

#include "attention/attention_ops.h"
#include "core/backend.h"
#include "core/check.h"
#include "core/cpu/cpu_features.h"
#include "core/memory_count.h"
#include "core/timer.h"
#include "planner/cluster.h"
#include "trainer/child_command.h"
#include "trainer/hostfile.h"

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
  double memory_gbs = 0;                                                        // the node's
  int threads = 1;
  int64_t runtime_overhead = 0;  // bytes resident that are not tensors, after the measurements
  int64_t tokens = 0, attention_tokens = 0;
};

// One layer's GEMMs of a training step (forward, and backward's data and weight gradients) and the head's, at N
// tokens, with the model's shapes: the FLOPs of the list, and a function that runs it.
struct GemmList {
  std::vector<Tensor> keep;
  std::vector<std::function<void(Precision)>> calls;
  double flops = 0;
};
GemmList gemm_list(Backend& be, const ModelConfig& m, int64_t N) {
  const int64_t C = m.hidden_size, HqD = m.num_attention_heads * m.head_dim(),
                HkD = m.num_key_value_heads * m.head_dim();
  const int64_t I = m.intermediate_size, V = m.vocab_size;
  GemmList g;
  auto t = [&](int64_t r, int64_t c) {
    g.keep.push_back(be.alloc({r, c}));
    be.fill(g.keep.back(), 0.01f);
    return g.keep.back();
  };
  // c (M, Nn) = op(a) op(b): FLOPs 2 M Nn K.
  auto add = [&](Tensor a, bool ta, Tensor b, bool tb, Tensor c) {
    const int64_t K = ta ? a.dim(0) : a.dim(1);
    g.flops += 2.0 * static_cast<double>(c.dim(0) * c.dim(1) * K);
    g.calls.push_back([&be, a, ta, b, tb, c](Precision p) mutable { be.gemm(p, a, ta, b, tb, c, 1.f, 0.f); });
  };
  Tensor h = t(N, C), dx = t(N, C), q = t(N, HqD), k = t(N, HkD), gate = t(N, I);
  Tensor wq = t(HqD, C), wk = t(HkD, C), wo = t(C, HqD), wg = t(I, C), wd = t(C, I), head = t(V, C);
  Tensor gwq = t(HqD, C), gwk = t(HkD, C), gwo = t(C, HqD), gwg = t(I, C), gwd = t(C, I), ghead = t(V, C);
  const int64_t rows = std::min<int64_t>(N, 4096);
  Tensor logits = t(rows, V), hr = t(rows, C);
  add(h, false, wq, true, q);  // q, and like it k, v
  add(h, false, wk, true, k);
  add(h, false, wk, true, k);
  add(q, false, wo, true, dx);    // o projection
  add(h, false, wg, true, gate);  // gate, up
  add(h, false, wg, true, gate);
  add(gate, false, wd, true, dx);   // down
  add(dx, false, wd, false, gate);  // backward: dact, g_down, the gate/up data and weight gradients
  add(dx, true, gate, false, gwd);
  add(gate, false, wg, false, h);
  add(gate, false, wg, false, h);
  add(gate, true, h, false, gwg);
  add(gate, true, h, false, gwg);
  add(dx, false, wo, false, q);  // attention projections' backward
  add(dx, true, q, false, gwo);
  add(q, false, wq, false, h);
  add(k, false, wk, false, h);
  add(k, false, wk, false, h);
  add(q, true, h, false, gwq);
  add(k, true, h, false, gwk);
  add(k, true, h, false, gwk);
  add(hr, false, head, true, logits);  // the head, forward and backward
  add(logits, true, hr, false, ghead);
  add(logits, false, head, false, hr);
  return g;
}

double gemm_tflops(Backend& be, const ModelConfig& m, int64_t N, Precision p) {
  GemmList g = gemm_list(be, m, N);
  const double s = best_seconds(3, [&] {
    for (auto& call : g.calls) call(p);
  });
  return g.flops / s / 1e12;
}

// Causal flash attention forward + backward at T tokens, the model's heads: FLOPs 7 T^2 D Hq (FlashAttention's
// convention: 2 T^2 D Hq forward, 2.5x that backward).
double attention_tflops(const ModelConfig& m, int64_t T, bool bf16) {
  const int64_t Hq = m.num_attention_heads, Hk = m.num_key_value_heads, D = m.head_dim();
  const AttentionOps& ops = attention_cpu_ops();
  AttentionProblem p{.Tq = T,
                     .Tk = T,
                     .Hq = Hq,
                     .Hk = Hk,
                     .D = D,
                     .causal = true,
                     .scale = 1.0f / std::sqrt(static_cast<float>(D)),
                     .bf16_inputs = bf16};
  std::vector<float> q(T * Hq * D), k(T * Hk * D), v(T * Hk * D), o(q.size()), dout(q.size()), dq(q.size());
  std::vector<float> dk(k.size()), dv(k.size()), lse(Hq * T), delta(Hq * T);
  uint32_t state = 12345;
  for (auto* x : {&q, &k, &v, &dout})
    for (float& f : *x) f = static_cast<float>((state = state * 1664525u + 1013904223u) >> 8) * 0x1p-24f - 0.5f;
  const double s = best_seconds(2, [&] {
    ops.forward(p, q.data(), k.data(), v.data(), o.data(), lse.data());
    ops.delta(p, o.data(), dout.data(), delta.data());
    ops.backward(p, q.data(), k.data(), v.data(), dout.data(), lse.data(), delta.data(), dq.data(), dk.data(),
                 dv.data());
  });
  RT_CHECK(std::all_of(o.begin(), o.end(), [](float x) { return std::isfinite(x); }), "calibrate: attention output");
  return 7.0 * static_cast<double>(T * T * D * Hq) / s / 1e12;
}

// y += a x over buffers far beyond the caches: 12 bytes per element (read x and y, write y).
double memory_gbs(Backend& be) {
  const int64_t n = 64 << 20;  // 256 MiB each
  Tensor x = be.alloc({n}), y = be.alloc({n});
  const double s = best_seconds(4, [&] { be.axpy(1e-3f, x, y); });
  return 12.0 * static_cast<double>(n) / s / 1e9;
}

ComputeRates measure_compute(const ModelConfig& m, int threads) {
  omp_set_num_threads(threads);
  Backend& be = cpu_backend();
  ComputeRates r;
  r.threads = threads;
  r.tokens = 4096;
  r.attention_tokens = 8192;  // a long-context step's block length (128-wide tiles)
  const double cores = threads;
  r.gemm_fp32 = gemm_tflops(be, m, r.tokens, Precision::fp32) / cores;
  r.gemm_bf16 = gemm_tflops(be, m, r.tokens, Precision::bf16) / cores;
  r.attention_fp32 = attention_tflops(m, r.attention_tokens, false) / cores;
  r.attention_bf16 = attention_tflops(m, r.attention_tokens, true) / cores;
  r.memory_gbs = memory_gbs(be);
  return r;
}

// What a training process holds besides its tensors (code, MPI, oneDNN, OpenMP stacks, heap slack): the resident
// high-water mark of a two-step run of a small model less its counted tensor peak.
int64_t measure_runtime_overhead() {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("ringtrain_calibrate_run_" + std::to_string(getpid()));
  const ChildResult run = child_command_run(
      "'" + child_self_path() + "' train --set model.hidden_size=128 --set model.num_hidden_layers=2 --set "
      "model.intermediate_size=256 --set train.seq_len=256 --set train.batch_size=1 --set train.steps=2 --set "
      "checkpoint.every=0 --set log.tensorboard=false --set log.dir='" + dir.string() + "'");
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
    r = measure_compute(config.model, cores);
    r.runtime_overhead = measure_runtime_overhead();
    std::fprintf(out,
                 "calibrate | %s, %d cores | GEMM %.3f / %.3f TFLOP/s per core (fp32 / bf16) | attention %.3f / "
                 "%.3f | memory %.1f GB/s | %.1f s\n",
                 cpu_model_name().c_str(), cores, r.gemm_fp32, r.gemm_bf16, r.attention_fp32, r.attention_bf16, r.memory_gbs,
                 total.seconds());
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
  c.name =
      options.name.empty() ? "this machine: " + cpu_model_name() + ", " + std::to_string(cores) + " cores" : options.name;
  c.nodes = links.value("hosts", 1);
  c.devices_per_node = cores;
  const double usable_gib = (meminfo_kib("MemTotal") / 1048576.0) - 1.0;
  c.memory_gib =
      measured(usable_gib, "/proc/meminfo MemTotal less 1 GiB for the OS, mpirun and the page cache, " + where);
  const std::string shapes = std::to_string(r.tokens) + " tokens of the model's linear layers and head, " +
                             std::to_string(cores) + " threads, per core, " + where;
  c.gemm_tflops_fp32 = measured(r.gemm_fp32, "fp32 GEMMs over " + shapes);
  c.gemm_tflops_bf16 = measured(r.gemm_bf16, "bf16 GEMMs over " + shapes);
  const std::string attention = "causal flash attention forward+backward, T " + std::to_string(r.attention_tokens) +
                                ", the model's heads, " + std::to_string(cores) + " threads, per core, " + where;
  c.attention_tflops_fp32 = measured(r.attention_fp32, "fp32 " + attention);
  c.attention_tflops_bf16 = measured(r.attention_bf16, "bf16 " + attention);
  c.memory_bandwidth_gbs =
      measured(r.memory_gbs, "axpy over 256 MiB buffers, " + std::to_string(cores) + " threads, " + where);
  c.runtime_overhead_mib =
      measured(r.runtime_overhead / 1048576.0, "resident high-water less counted tensors of a 2-step training run, " + where);
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
