// The set-up every command shares (train, eval, sample): device, mesh, backend, attention, model.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "attention/sequence_attention.h"
#include "core/backend.h"
#include "data/dataset.h"
#include "parallel/mesh.h"
#include "parallel/ring_attention.h"
#include "parallel/ulysses_attention.h"
#include "parallel/sharding.h"
#include "trainer/config.h"
#include "trainer/model.h"

namespace rt {

struct RunSetup {
  Device device = Device::cpu;
  Mesh mesh;                   // dp x cp x ulysses over the world (NCCL between GPUs, MPI otherwise)
  Backend* backend = nullptr;  // of `device`
  Precision precision = Precision::fp32;
  Sharding sharding = Sharding::zigzag;
  int64_t padded = 0;                            // train.seq_len padded to what the mesh carries (sharded_length)
  std::unique_ptr<SequenceAttention> attention;  // the ring when cp > 1, else local; inside Ulysses when ulysses > 1
  RingAttention* ring = nullptr;                 // the ring when there is one (its statistics), else nullptr
  UlyssesAttention* ulysses = nullptr;           // `attention` when it is Ulysses (its statistics), else nullptr
  std::unique_ptr<LlamaModel> model;             // weights not initialised: init_weights or a checkpoint's
};

// Builds the run's parts from the config (threads per rank set for OpenMP). MPI must be initialised. Throws
// rt::UserError for a device this build or machine lacks, or a mesh the world does not fit. make_attention, when
// given, builds the attention in place of the ring / local one (sampling's KV caches), once backend and mesh exist.
RunSetup run_setup_make(
    const Config& config,
    const std::function<std::unique_ptr<SequenceAttention>(Backend&, Mesh&)>& make_attention = {});

// The dataset of the config's data.* keys, with `seed` (train.seed for training; eval holds out another). Throws
// rt::UserError as dataset_make does, and for data.document_mask or data.reset_positions without document boundaries.
std::unique_ptr<Dataset> run_dataset_make(const Config& config, uint64_t seed);

// "fp32", or "bf16 GEMMs and attention (AMX-BF16 and AVX512-BF16)", or "... (this CPU has no bf16 instructions)".
std::string precision_text(Precision precision, Device device);

}  // namespace rt
