// Per-rank memory of a training step, by term, from the layout alone: every tensor the step allocates, counted as
// the runtime allocates it (each CPU tensor rounded up to 64 bytes), plus the runtime's own overhead.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "planner/layout.h"

namespace rt {

struct MemoryTerm {
  std::string name;  // "parameters", "activations", ...
  int64_t bytes = 0;
  std::string what;  // one line: which tensors
};

struct MemoryPlan {
  std::vector<MemoryTerm> terms;  // in the order of MemoryPlan::kTermNames
  int64_t runtime_overhead = 0;   // not tensors: code, MPI, oneDNN, CUDA runtimes (the cluster file's figure)
  int64_t tensors() const;        // every term: what the tensors and kernel buffers hold at the step's peak
  int64_t total() const { return tensors() + runtime_overhead; }
  int64_t term(const std::string& name) const;  // 0 for a term the layout does not have
};

// The peak of one training step on one rank (the backward of the first micro-batch on: every grow-only buffer is
// held then, and the ring backward's transient statistics with the flash backward's tiles). Terms: parameters,
// gradients, optimizer (AdamW m and v), activations (saved forward state of each layer, or of one with
// recomputation), backward (the backward's and the loss's buffers), attention_scratch (the flash kernels'
// workspaces and tiles), ring_buffers (travelling K/V and dK/dV blocks, merge state), all_to_all_buffers (Ulysses),
// gemm_staging (bf16 copies of GEMM inputs), batch (tokens, labels, positions, losses).
MemoryPlan plan_memory(const PlanLayout& layout, int64_t runtime_overhead_bytes);

// Parameters of the model (the embedding counted once when tied).
int64_t plan_parameter_count(const ModelConfig& model);

}  // namespace rt
