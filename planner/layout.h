// A layout the planner models: the model, the sequence and how its ranks split it (pure values; from a Config).
#pragma once
#include <cstdint>
#include <string>

#include "trainer/config.h"

namespace rt {

struct PlanLayout {
  ModelConfig model;
  int64_t seq_len = 0;      // train.seq_len, padded to what the mesh carries (sharded_length)
  int64_t batch_size = 1;   // sequences per optimizer step over all dp ranks
  int64_t micro_batch = 1;  // sequences per forward/backward on one rank
  int64_t cp = 1, dp = 1, ulysses = 1;
  bool zigzag = true;
  bool recompute = false;      // train.recompute full
  bool bf16 = false;           // train.precision bf16
  bool document_mask = false;  // data.document_mask: one more (N) i32 per micro-batch
  int64_t threads = 1;         // OpenMP threads per rank (CPU): per-thread dQ parts and tiles
  bool cuda = false;           // train.device cuda
  // CPU bf16: bytes per element of the GEMM inputs' staged copies: 2 (bf16, oneDNN's bf16 matmul), or 4 where oneDNN
  // has no bf16 matmul for the CPU (AVX2 only) and the inputs are rounded into fp32 copies. The planner cannot see the
  // machine: the commands set it from the CPU they run on (cpu::gemm_bf16_implementation).
  int64_t bf16_staging_bytes = 2;

  int64_t ranks() const { return cp * dp * ulysses; }
  int64_t sequence_ranks() const { return cp * ulysses; }
  int64_t tokens_per_rank() const { return seq_len / sequence_ranks(); }  // of one sequence
  int64_t micro_steps() const { return batch_size / (dp * micro_batch); }
};

// The padded length the mesh carries: seq_len rounded up to a multiple of (2 cp with zigzag, cp contiguous, 1 at
// cp 1) x ulysses (parallel/sharding.cpp, sharded_length).
int64_t plan_padded_length(int64_t seq_len, int64_t cp, bool zigzag, int64_t ulysses);

// The layout of a validated config; threads: per rank (train.threads, or the cores a rank gets).
PlanLayout plan_layout_of(const Config& config, int64_t threads);

// "cp 4 x dp 2 x ulysses 1, micro 1, recompute none, fp32"
std::string plan_layout_describe(const PlanLayout& layout);

}  // namespace rt
