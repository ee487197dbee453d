// Communicator: the collective and neighbour operations ring attention and the trainer need (MPI; NCCL).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace rt {

// An outstanding non-blocking operation; wait() on the communicator that made it.
struct CommHandle {
  std::vector<int64_t> requests;  // implementation-defined ids
  bool pending() const { return !requests.empty(); }
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Posts the send of `send` to rank dst and the receive of `recv` from rank src; both stay untouched
  // until wait(). Tensors are f32, i32 or bf16, contiguous.
  virtual CommHandle sendrecv_async(const Tensor& send, int dst, Tensor& recv, int src) = 0;
  virtual void wait(CommHandle& handle) = 0;
  virtual void all_reduce_sum(Tensor& t) = 0;                 // f32, in place
  virtual void all_reduce_sum(double* values, int count) = 0;  // in place
  virtual void all_gather(const uint64_t* mine, uint64_t* all) = 0;  // one value per rank -> (size)
  // Block i of send goes to rank i, block j of recv comes from rank j: both (size, n) of one dtype (f32, i32, bf16),
  // contiguous, and distinct. Ulysses' head exchange. GPU tensors: queued after the compute stream's work, which then
  // waits for it.
  virtual void all_to_all(const Tensor& send, Tensor& recv) = 0;
  virtual std::vector<std::string> host_names() = 0;                  // every rank's host, by rank (collective)
  virtual void broadcast(Tensor& t, int root) = 0;
  virtual void barrier() = 0;
  // Ranks with the same color form a new communicator, ordered by key.
  virtual std::unique_ptr<Communicator> split(int color, int key) = 0;
};

// The training step the job is in (set by the training loop), for the watchdogs' messages; 0 before the first step.
void comm_step_set(int64_t step);
int64_t comm_step();

// MPI_COMM_WORLD (MPI must be initialised). With MPI_THREAD_MULTIPLE, every blocking operation of it and of its splits
// has a deadline of timeout_s (parallel.comm_timeout_s): past it, the job ends naming the peer that does not answer
// (parallel/mpi_watchdog.h).
std::unique_ptr<Communicator> mpi_world(double timeout_s = 300);

// The GPU world over MPI_COMM_WORLD's ranks (parallel/nccl_communicator.cpp; parallel/no_nccl.cpp where the build has
// no NCCL, which throws rt::UserError). Collective: every rank calls it. Each rank takes GPU (node-local rank modulo
// the node's GPUs); rank 0's ncclUniqueId reaches the others by MPI_Bcast. GPU tensors travel over NCCL on a
// communication stream that waits for the compute stream's earlier work (events), and wait() makes the compute
// stream wait for the transfer without blocking the host; host values and CPU tensors go over MPI. A watchdog thread
// aborts the NCCL communicator and ends the job with the operation's name when one has not completed `timeout_s`
// seconds after it was issued, or when NCCL reports an asynchronous error.
std::unique_ptr<Communicator> nccl_world(double timeout_s = 300);

}  // namespace rt
