// The set-up every command shares: device, mesh, backend, attention and model, from the config.
#include "trainer/run_setup.h"

#include <mpi.h>
#include <omp.h>

#include <algorithm>

#include "core/check.h"
#include "core/cpu/cpu_features.h"

namespace rt {
namespace {

int threads_for_rank(const Config& config) {
  if (config.train.threads > 0) return static_cast<int>(config.train.threads);
  MPI_Comm node;
  RT_CHECK_MPI(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node));
  int local_ranks = 1;
  MPI_Comm_size(node, &local_ranks);
  MPI_Comm_free(&node);
  return std::max(1, omp_get_num_procs() / local_ranks);
}

// The device train.device names; one this build or machine lacks is the user's mistake (exit 2, with the reason).
Device device_of(const TrainConfig& tc) {
  const Device device = tc.device == "cuda" ? Device::cuda : Device::cpu;
  const std::string why = device_unavailable_reason(device);
  if (!why.empty()) throw UserError("train.device is " + tc.device + " but " + why + "; use train.device=cpu");
  return device;
}

// The world communicator: GPUs of several ranks talk over NCCL (docs/gpu.md), everything else over MPI.
std::unique_ptr<Communicator> world_make(Device device, double timeout_s) {
  int ranks = 1;
  RT_CHECK_MPI(MPI_Comm_size(MPI_COMM_WORLD, &ranks));
  return device == Device::cuda && ranks > 1 ? nccl_world(timeout_s) : mpi_world(timeout_s);
}

}  // namespace

std::string precision_text(Precision precision, Device device) {
  if (precision == Precision::fp32) return device == Device::cuda ? "fp32 (TF32 GEMMs, bf16 attention)" : "fp32";
  if (device == Device::cuda) return "bf16 GEMMs and attention (tensor cores)";
  const std::string cpu = cpu_bf16_description();
  return "bf16 GEMMs and attention (" +
         (cpu.empty() ? std::string("this CPU has no bf16 instructions: the rounded values multiplied in fp32") : cpu) +
         ")";
}

std::unique_ptr<Dataset> run_dataset_make(const Config& config, uint64_t seed) {
  auto dataset = dataset_make(DatasetSpec{config.data.task, data_paths(config.data), config.train.seq_len,
                                          config.model.vocab_size, seed, config.data.eot});
  auto needs_documents = [&](bool wanted, const std::string& key) {
    RT_USER_CHECK(!wanted || dataset->has_documents(),
                  key + " needs document boundaries, but data.task=" + config.data.task +
                      " gives one document per sequence; give data.task=text several files (a list or a directory), "
                      "or set data.eot to the token that begins each document");
  };
  needs_documents(config.data.document_mask, "data.document_mask");
  needs_documents(config.data.reset_positions, "data.reset_positions");
  if (config.data.train_on == "long_range") dataset = long_range_labels_only(std::move(dataset));
  return dataset;
}

RunSetup run_setup_make(const Config& config,
                        const std::function<std::unique_ptr<SequenceAttention>(Backend&, Mesh&)>& make_attention) {
  RunSetup r;
  r.device = device_of(config.train);
  r.mesh = mesh_make(world_make(r.device, config.parallel.comm_timeout_s), static_cast<int>(config.parallel.cp),
                     static_cast<int>(config.parallel.dp), static_cast<int>(config.parallel.ulysses));
  omp_set_num_threads(threads_for_rank(config));
  r.backend = &backend_for(r.device);
  r.precision = config.train.precision == "bf16" ? Precision::bf16 : Precision::fp32;
  r.sharding = sharding_parse(config.parallel.sharding);
  r.padded = sharded_length(config.train.seq_len, r.mesh.cp, r.sharding, r.mesh.ulysses);
  if (make_attention) {
    r.attention = make_attention(*r.backend, r.mesh);
  } else {  // the ring or the local kernels, on the Ulysses-gathered rows when ulysses > 1
    r.attention = layout_attention_make(*r.mesh.cp_group, *r.mesh.ulysses_group, *r.backend, r.padded, r.sharding, true,
                                        r.precision);
    r.ulysses = dynamic_cast<UlyssesAttention*>(r.attention.get());
    r.ring = dynamic_cast<RingAttention*>(r.ulysses ? &r.ulysses->inner() : r.attention.get());
  }
  r.model = std::make_unique<LlamaModel>(config.model, *r.backend, *r.attention, r.precision, config.train.seq_len);
  r.model->set_recompute(config.train.recompute == "full");
  return r;
}

}  // namespace rt
