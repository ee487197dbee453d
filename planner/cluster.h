// A cluster file (configs/clusters/*.yaml): what the planner knows of the machines, every number with its source.
#pragma once
#include <cstdint>
#include <string>

namespace rt {

// One number of a cluster file and where it came from: "measured: ringtrain calibrate on <host>, <date>" or
// "spec: <document>". In YAML: `key: {value: 989, source: "spec: NVIDIA H100 datasheet"}`.
struct Measured {
  double value = 0;
  std::string source;
  bool measured() const { return source.rfind("measured", 0) == 0; }
};

// A link class: the bandwidth one rank sees when it sends to one peer while every rank sends (GB/s, 1e9 bytes per
// second, one direction), and the latency of one small message (microseconds).
struct LinkSpec {
  Measured bandwidth_gbs;
  Measured latency_us;
};

struct ClusterSpec {
  std::string name;              // one line: what machines these are
  std::string kind = "cpu";      // cpu | cuda
  int64_t nodes = 1;             // nodes the cluster has (the largest job: nodes * devices_per_node ranks)
  int64_t devices_per_node = 1;  // GPUs (cuda), or cores (cpu) of one node
  // Memory one rank may fill: cuda, each GPU's own (device_memory_gib); cpu, the node's, shared by the ranks on it
  // (node_memory_gib, what the OS leaves usable). Exactly the one of the kind is given.
  Measured memory_gib;
  // Rates of one device (one GPU, or one core), TFLOP/s over the shapes a training step runs: the linear layers'
  // GEMMs, and flash attention forward+backward (FlashAttention's FLOP convention), in fp32 and in bf16 (bf16
  // inputs, fp32 accumulation).
  Measured gemm_tflops_fp32, gemm_tflops_bf16;
  Measured attention_tflops_fp32, attention_tflops_bf16;
  // The compute a rank gets per core when it runs all of a node's cores as threads, against one 1-thread rank per
  // core (the rates above); a rank of more than one thread runs at the rates times this. 1 on GPUs.
  Measured thread_efficiency{1.0, ""};
  Measured memory_bandwidth_gbs;  // of one device (GPU), or of a node's memory (cpu; its cores share it)
  Measured runtime_overhead_mib;  // per rank, what is not tensors: code, the MPI/NCCL/CUDA/oneDNN runtimes, stacks
  LinkSpec intra_node;            // between two ranks of one node (shared memory, NVLink)
  LinkSpec inter_node;            // between nodes (Ethernet, InfiniBand); may be absent when nodes == 1
  bool has_inter_node = false;

  bool memory_per_node() const { return kind == "cpu"; }
};

// Reads a cluster file. Throws rt::UserError naming the file, the field and what is valid, for a missing, unknown,
// non-numeric or impossible field (a rate or size <= 0, a latency < 0, a source that starts with neither
// "measured" nor "spec", inter_node missing on a cluster of several nodes).
ClusterSpec cluster_load(const std::string& path);
// The same for YAML text; `origin` names it in errors.
ClusterSpec cluster_parse(const std::string& text, const std::string& origin);
// The cluster file of `spec`, every field with its source (calibrate writes this; cluster_parse reads it back equal).
std::string cluster_to_yaml(const ClusterSpec& spec);

}  // namespace rt
