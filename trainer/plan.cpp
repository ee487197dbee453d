// `ringtrain plan`: prints the planner's per-rank memory and step time by term for the configured layout on a
// cluster file (text or one JSON object), or with --search the layouts of a length on D devices, fastest first.
#include "trainer/plan.h"

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/check.h"
#include "core/cpu/kernels.h"
#include "planner/cluster.h"
#include "planner/layout_search.h"
#include "planner/memory_model.h"

namespace rt {

namespace {

constexpr double kMiB = 1048576.0, kGiB = 1073741824.0;

std::string format(const char* fmt, auto... args) {
  char text[512];
  std::snprintf(text, sizeof text, fmt, args...);
  return text;
}

// The fewest tokens per rank that hide the ring's exchange, per link class of the cluster.
std::string ring_thresholds(const PlannedLayout& p, const ClusterSpec& c, bool this_layout = true) {
  PlanLayout l = p.layout;
  if (l.cp == 1) l.cp = 2;  // the threshold of a ring, should this layout get one
  std::string text = format("ring hides its exchange at >= %ld tokens per rank over intra_node (%.1f GB/s)",
                            static_cast<long>(plan_ring_min_tokens(l, c, c.intra_node, p.placement.compute_cores)),
                            c.intra_node.bandwidth_gbs.value);
  if (c.has_inter_node)
    text += format(", >= %ld over inter_node (%.3f GB/s)",
                   static_cast<long>(plan_ring_min_tokens(l, c, c.inter_node, p.placement.compute_cores)),
                   c.inter_node.bandwidth_gbs.value);
  if (this_layout && p.layout.cp > 1)
    text += format("; this layout: %ld tokens per rank over %s: %s", static_cast<long>(p.layout.tokens_per_rank()),
                   p.time.ring_link.c_str(),
                   p.ring_hidden() ? "hidden" : "EXPOSED (fewer ranks or a longer sequence hide it)");
  return text;
}

nlohmann::ordered_json plan_json(const PlannedLayout& p) {
  nlohmann::ordered_json j;
  const PlanLayout& l = p.layout;
  j["layout"] = {{"cp", l.cp},
                 {"dp", l.dp},
                 {"ulysses", l.ulysses},
                 {"seq_len", l.seq_len},
                 {"micro_batch", l.micro_batch},
                 {"batch_size", l.batch_size},
                 {"recompute", l.recompute ? "full" : "none"},
                 {"precision", l.bf16 ? "bf16" : "fp32"}};
  j["placement"] = {{"nodes", p.placement.nodes},
                    {"ranks_per_node", p.placement.ranks_per_node},
                    {"cores_per_rank", p.placement.cores_per_rank},
                    {"compute_cores", p.placement.compute_cores}};
  j["memory_per_rank_bytes"] = p.memory.total();
  j["memory_limit_bytes"] = p.memory_limit;
  j["fits"] = p.fits();
  nlohmann::ordered_json terms;
  for (const MemoryTerm& t : p.memory.terms) terms[t.name] = t.bytes;
  terms["runtime_overhead"] = p.memory.runtime_overhead;
  j["memory_terms_bytes"] = terms;
  const StepTimePlan& t = p.time;
  j["step_time_s"] = t.step_s;
  j["tokens_per_s"] = t.tokens_per_s;
  j["model_flop_utilisation"] = t.flop_utilisation;
  j["time_terms_s"] = {{"gemm", t.gemm_s},
                       {"attention", t.attention_s},
                       {"elementwise", t.elementwise_s},
                       {"ring_exchange", t.ring_comm_s},
                       {"ring_exposed", t.ring_exposed_s},
                       {"ring_delivery", t.ring_delivery_s},
                       {"all_to_all", t.all_to_all_s},
                       {"all_reduce", t.all_reduce_s},
                       {"all_reduce_exposed", t.all_reduce_exposed_s},
                       {"optimizer", t.optimizer_s}};
  j["ring_link"] = t.ring_link;
  j["ring_min_tokens_per_rank"] = p.ring_min_tokens;
  j["ring_hidden"] = p.ring_hidden();
  return j;
}

void print_plan(const PlannedLayout& p, const ClusterSpec& c, const std::string& cluster_path, std::FILE* out) {
  const PlanLayout& l = p.layout;
  std::fprintf(out, "plan | %ld parameters | cluster %s (%s)\n", static_cast<long>(plan_parameter_count(l.model)),
               c.name.c_str(), cluster_path.c_str());
  std::fprintf(out,
               "layout | %s | %ld ranks on %ld node%s, %ld per node, %ld thread%s and %.3g cores' compute per rank\n",
               plan_layout_describe(l).c_str(), static_cast<long>(l.ranks()), static_cast<long>(p.placement.nodes),
               p.placement.nodes == 1 ? "" : "s", static_cast<long>(p.placement.ranks_per_node),
               static_cast<long>(p.placement.cores_per_rank), p.placement.cores_per_rank == 1 ? "" : "s",
               p.placement.compute_cores);
  std::string memory = "memory per rank (MiB) |";
  for (const MemoryTerm& t : p.memory.terms)
    if (t.bytes > 0) memory += format(" %s %.1f |", t.name.c_str(), t.bytes / kMiB);
  memory += format(" runtime %.0f | total %.1f of %.2f GiB: %s", p.memory.runtime_overhead / kMiB,
                   p.memory.total() / kMiB, p.memory_limit / kGiB, p.fits() ? "fits" : "DOES NOT FIT");
  std::fprintf(out, "%s\n", memory.c_str());
  const StepTimePlan& t = p.time;
  std::string time =
      format("step time (s) | gemm %.4g | attention %.4g | elementwise %.4g", t.gemm_s, t.attention_s, t.elementwise_s);
  if (l.cp > 1)
    time += format(" | ring %.4g over %s, exposed %.4g", t.ring_comm_s, t.ring_link.c_str(), t.ring_exposed_s);
  if (l.ulysses > 1) time += format(" | all-to-all %.4g", t.all_to_all_s);
  if (l.ranks() > 1) time += format(" | all-reduce %.4g, exposed %.4g", t.all_reduce_s, t.all_reduce_exposed_s);
  time += format(" | optimizer %.4g | step %.4g", t.optimizer_s, t.step_s);
  std::fprintf(out, "%s\n", time.c_str());
  std::fprintf(out, "throughput | %.0f tokens/s | model FLOP utilisation %.1f%% of the cluster file's GEMM rate\n",
               t.tokens_per_s, 100 * t.flop_utilisation);
  std::fprintf(out, "%s\n", ring_thresholds(p, c).c_str());
}

void print_search(const std::vector<PlannedLayout>& all, const ClusterSpec& c, std::FILE* out) {
  int64_t fitting = 0, exposed = 0;
  for (const PlannedLayout& p : all) {
    fitting += p.fits();
    exposed += p.fits() && !p.ring_hidden();
  }
  std::fprintf(out,
               "search | %zu layouts, %ld fit memory; %ld of those leave the ring exposed (fewer tokens per rank "
               "than its link needs) and are not recommended\n",
               all.size(), static_cast<long>(fitting), static_cast<long>(exposed));
  std::fprintf(out, "%s (%s)\n", ring_thresholds(all.front(), c, false).c_str(),
               all.front().layout.bf16 ? "bf16" : "fp32");
  std::fprintf(out, "%-4s %-4s %-4s %-7s %-5s %-9s %-10s %-12s %-10s %-12s %s\n", "cp", "dp", "uly", "micro", "prec",
               "recompute", "tok/rank", "mem GiB", "step s", "tokens/s", "ring");
  for (const PlannedLayout& p : all) {
    if (!p.fits() || !p.ring_hidden()) continue;
    const PlanLayout& l = p.layout;
    std::fprintf(
        out, "%-4ld %-4ld %-4ld %-7ld %-5s %-9s %-10ld %-12.2f %-10.4g %-12.0f %s\n", static_cast<long>(l.cp),
        static_cast<long>(l.dp), static_cast<long>(l.ulysses), static_cast<long>(l.micro_batch),
        l.bf16 ? "bf16" : "fp32", l.recompute ? "full" : "none", static_cast<long>(l.tokens_per_rank()),
        p.memory.total() / kGiB, p.time.step_s, p.time.tokens_per_s,
        l.cp == 1
            ? "-"
            : format("hidden (>= %ld, %s)", static_cast<long>(p.ring_min_tokens), p.time.ring_link.c_str()).c_str());
  }
  if (fitting == 0) std::fprintf(out, "no layout fits: more devices, a shorter sequence, or a smaller model\n");
}

}  // namespace

// Runs each layout, then prints the table of predicted against measured (or, with --json, an array of objects).
void validate_and_print(const std::vector<PlannedLayout>& layouts, const PlanOptions& options, std::FILE* out) {
  nlohmann::ordered_json all = nlohmann::ordered_json::array();
  if (!options.json) std::fprintf(out, "%s\n", validated_header().c_str());
  for (const PlannedLayout& p : layouts) {
    const ValidatedLayout v = plan_validate(p, options.run);
    if (options.json) {
      nlohmann::ordered_json j = plan_json(p);
      j["measured_step_time_s"] = v.measured_step_s;
      j["measured_memory_per_rank_bytes"] = v.measured_resident_bytes;
      j["measured_tensor_bytes"] = v.measured_tensor_bytes;
      j["step_time_error"] = v.step_error();
      j["memory_error"] = v.memory_error();
      if (v.measured_parts) {
        const StepTimePlan& t = p.time;
        j["predicted_parts_s"] = {{"gemm", t.gemm_s},
                                  {"attention", t.attention_s},
                                  {"communication_waits", t.ring_exposed_s + t.all_to_all_s + t.all_reduce_exposed_s},
                                  {"other", t.elementwise_s + t.optimizer_s}};
        j["measured_parts_s"] = {{"gemm", v.measured_gemm_s},
                                 {"attention", v.measured_attention_s},
                                 {"communication_waits", v.measured_wait_s},
                                 {"other", v.measured_other_s}};
      }
      all.push_back(j);
    } else {
      std::fprintf(out, "%s\n", validated_row(v).c_str());
      std::fflush(out);
    }
  }
  if (options.json) std::fprintf(out, "%s\n", (layouts.size() == 1 ? all[0] : all).dump().c_str());
}

void plan_run(const Config& config, const PlanOptions& options, std::FILE* out) {
  RT_USER_CHECK(!options.cluster.empty(), "plan needs --cluster FILE; the cluster files are in configs/clusters/");
  const ClusterSpec cluster = cluster_load(options.cluster);
  RT_USER_CHECK((config.train.device == "cuda") == (cluster.kind == "cuda"),
                "train.device " + config.train.device + " does not run on cluster '" + cluster.name + "' of kind " +
                    cluster.kind + "; set train.device=" + cluster.kind + " or give a " + config.train.device +
                    " cluster file");
  PlanLayout layout = plan_layout_of(config, config.train.threads);
  layout.bf16_staging_bytes = cpu::gemm_bf16_implementation().empty() ? 4 : 2;  // this CPU's bf16 GEMM
  if (!options.search) {
    const PlannedLayout p = plan_layout(layout, cluster, config.train.threads);
    if (options.validate)
      validate_and_print({p}, options, out);
    else if (options.json)
      std::fprintf(out, "%s\n", plan_json(p).dump().c_str());
    else
      print_plan(p, cluster, options.cluster, out);
    return;
  }
  const int64_t seq = options.seq_len > 0 ? options.seq_len : config.train.seq_len;
  const int64_t devices = options.devices > 0 ? options.devices : layout.ranks();
  RT_USER_CHECK(devices <= cluster.nodes * cluster.devices_per_node,
                "--devices " + std::to_string(devices) + " exceeds cluster '" + cluster.name + "' (" +
                    std::to_string(cluster.nodes * cluster.devices_per_node) + " devices); valid: 1 to " +
                    std::to_string(cluster.nodes * cluster.devices_per_node));
  const std::vector<PlannedLayout> all = plan_search(layout, seq, devices, cluster, config.train.threads);
  RT_USER_CHECK(!all.empty(), "no layout of " + std::to_string(devices) + " devices divides train.batch_size " +
                                  std::to_string(config.train.batch_size) +
                                  " and the heads; valid: a batch size "
                                  "that a dp of the devices divides");
  if (options.validate) {
    std::vector<PlannedLayout> best;
    for (const PlannedLayout& p : all)
      if (p.fits() && p.ring_hidden() && static_cast<int64_t>(best.size()) < options.top) best.push_back(p);
    RT_USER_CHECK(!best.empty(), "--validate: no layout fits and hides its ring; nothing to run");
    validate_and_print(best, options, out);
    return;
  }
  if (options.json) {
    nlohmann::ordered_json j = nlohmann::ordered_json::array();
    for (const PlannedLayout& p : all) j.push_back(plan_json(p));
    std::fprintf(out, "%s\n", j.dump().c_str());
    return;
  }
  print_search(all, cluster, out);
}

}  // namespace rt
