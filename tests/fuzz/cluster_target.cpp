// Fuzz target: a planner cluster file (planner/cluster.h). Accepted files must survive being written again by
// cluster_to_yaml (what calibrate writes) and read back equal.
#include "planner/cluster.h"
#include "tests/fuzz/fuzz_targets.h"

namespace rt::fuzz {

namespace {
bool same(const Measured& a, const Measured& b) { return a.value == b.value && a.source == b.source; }
bool same(const LinkSpec& a, const LinkSpec& b) {
  return same(a.bandwidth_gbs, b.bandwidth_gbs) && same(a.latency_us, b.latency_us);
}
}  // namespace

bool cluster_target(const uint8_t* data, size_t size) {
  const std::string path = scratch_dir() + "/cluster.yaml";
  write_file(path, as_text(data, size));
  return result_or_user_error([&] {
    const ClusterSpec c = cluster_load(path);
    const std::string yaml = cluster_to_yaml(c);
    const ClusterSpec d = cluster_parse(yaml, "the cluster file written again");
    const bool equal =
        c.name == d.name && c.kind == d.kind && c.nodes == d.nodes && c.devices_per_node == d.devices_per_node &&
        same(c.memory_gib, d.memory_gib) && same(c.gemm_tflops_fp32, d.gemm_tflops_fp32) &&
        same(c.gemm_tflops_bf16, d.gemm_tflops_bf16) && same(c.attention_tflops_fp32, d.attention_tflops_fp32) &&
        same(c.attention_tflops_bf16, d.attention_tflops_bf16) && same(c.thread_efficiency, d.thread_efficiency) &&
        same(c.memory_bandwidth_gbs, d.memory_bandwidth_gbs) && same(c.runtime_overhead_mib, d.runtime_overhead_mib) &&
        same(c.intra_node, d.intra_node) && c.has_inter_node == d.has_inter_node &&
        (!c.has_inter_node || same(c.inter_node, d.inter_node));
    if (!equal) wrong_result("a cluster file that reads back different once written again:\n" + yaml);
  });
}

}  // namespace rt::fuzz
