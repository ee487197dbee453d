// Step time of a layout on a cluster, by term: GEMMs, attention per ring step, the ring exchange hidden and exposed,
// Ulysses all-to-alls, the gradient all-reduce, elementwise work and AdamW; tokens/s and FLOP utilisation.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "planner/cluster.h"
#include "planner/layout.h"

namespace rt {

// Where the job's ranks land: blocks of consecutive world ranks per node (mpirun's default, --map-by slot).
struct PlanPlacement {
  int64_t nodes = 1;  // nodes the job uses
  int64_t ranks_per_node = 1;
  int64_t cores_per_rank = 1;          // cpu: OpenMP threads (train.threads, or the node's cores shared out); cuda: 1
  double compute_cores = 1;            // cores' worth of compute a rank gets: fewer than its threads when the node's
                                       // ranks x threads exceed its cores (oversubscribed), and times the cluster's
                                       // thread_efficiency when the rank runs several threads
  bool ring_crosses_nodes = false;     // some ring hop is between nodes (its slowest hop sets the ring's pace)
  bool ulysses_crosses_nodes = false;  // the all-to-all group spans nodes
};

// threads: train.threads (0: the node's cores shared out among its ranks). Throws rt::UserError when the layout
// needs more GPUs than the cluster has (CPU ranks beyond the cores share them).
PlanPlacement plan_placement(const PlanLayout& layout, const ClusterSpec& cluster, int64_t threads);

struct StepTimePlan {
  double gemm_s = 0;                // linear layers and the head, forward + backward (+ recomputed forward)
  double attention_s = 0;           // flash attention compute, all ring steps, all layers
  double elementwise_s = 0;         // norms, RoPE, SwiGLU, residuals, loss, embedding: bytes over memory bandwidth
  double ring_comm_s = 0;           // the ring's transfers, all of them
  double ring_exposed_s = 0;        // the part no compute hides, the last dK/dV delivery of each layer included
  double ring_delivery_s = 0;       // of which: each layer's last dK/dV transfer home, which nothing can hide
  double all_to_all_s = 0;          // Ulysses, not overlapped
  double all_reduce_s = 0;          // the gradient all-reduce
  double all_reduce_exposed_s = 0;  // the part the last backward does not hide
  double optimizer_s = 0;           // zero grads, grad norm, AdamW: bytes over memory bandwidth
  double step_s = 0;
  double tokens_per_s = 0;
  double model_flops = 0;       // per step, the whole job (6 per parameter-token plus attention, as the trainer logs)
  double flop_utilisation = 0;  // model_flops / step_s over the job's GEMM rate in the cluster file
  double ring_step_compute_s = 0, ring_step_comm_s = 0;  // one forward ring step of one layer
  std::string ring_link;                                 // "intra_node" | "inter_node" | "" (no ring)
};

StepTimePlan plan_step_time(const PlanLayout& layout, const ClusterSpec& cluster, const PlanPlacement& placement);

// The compute of one optimizer step on one rank, which plan_step_time divides by the cluster file's rates (and
// `ringtrain calibrate` divides by the times a real step measured, to get those rates).
struct StepWork {
  double gemm_flops = 0;         // linear layers and the head: 6 per weight-token, 2 more per recomputed layer
  double attention_flops = 0;    // this rank's flash attention, FlashAttention's convention (causal: 2 S^2 D Hq
                                 // forward, 2.5x that backward), the recomputed forwards included
  double elementwise_bytes = 0;  // fp32 bytes the norms, RoPE, SwiGLU, residuals, ring merges and loss move
  double optimizer_bytes = 0;    // zeroing the gradients, their norm, AdamW
};
StepWork plan_step_work(const PlanLayout& layout);

// The fewest tokens per rank at which a ring step's attention compute covers its exchange over `link`, forward and
// backward (c >= F / B: the compute grows with tokens squared, the block with tokens).
int64_t plan_ring_min_tokens(const PlanLayout& layout, const ClusterSpec& cluster, const LinkSpec& link,
                             double compute_cores);

}  // namespace rt
