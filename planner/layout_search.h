// Every layout of one sequence length on D devices (cp x dp x ulysses, micro-batch, recompute, precision), planned,
// those that fit memory first and fastest first.
#pragma once
#include <cstdint>
#include <vector>

#include "planner/cluster.h"
#include "planner/layout.h"
#include "planner/memory_model.h"
#include "planner/time_model.h"

namespace rt {

struct PlannedLayout {
  PlanLayout layout;
  PlanPlacement placement;
  MemoryPlan memory;
  StepTimePlan time;
  int64_t memory_limit = 0;     // bytes one rank may hold (the GPU's, or the node's shared by its ranks)
  int64_t ring_min_tokens = 0;  // tokens per rank the ring needs to hide its exchange over its link (0: no ring)
  bool fits() const { return memory.total() <= memory_limit; }
  bool ring_hidden() const { return layout.cp == 1 || layout.tokens_per_rank() >= ring_min_tokens; }
};

// Plans one layout on the cluster (threads: train.threads, 0 = the node's cores shared out).
PlannedLayout plan_layout(const PlanLayout& layout, const ClusterSpec& cluster, int64_t threads);

// Layouts of `base` (its model and batch size) at seq_len on `devices` ranks: cp, ulysses and dp with
// cp * ulysses * dp = devices (ulysses fitting the heads, dp dividing the batch), micro-batches dividing each rank's
// sequences (up to 8), recompute none and full, fp32 and bf16. Sorted: fitting before not, then step time.
std::vector<PlannedLayout> plan_search(const PlanLayout& base, int64_t seq_len, int64_t devices,
                                       const ClusterSpec& cluster, int64_t threads);

}  // namespace rt
