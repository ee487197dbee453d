// Communicator: the collective and neighbour operations ring attention and the trainer need (MPI; NCCL later).
#pragma once
#include <cstdint>
#include <memory>
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
  // until wait(). Tensors are f32 or i32, contiguous.
  virtual CommHandle sendrecv_async(const Tensor& send, int dst, Tensor& recv, int src) = 0;
  virtual void wait(CommHandle& handle) = 0;
  virtual void all_reduce_sum(Tensor& t) = 0;                 // f32, in place
  virtual void all_reduce_sum(double* values, int count) = 0;  // in place
  virtual void all_gather(const uint64_t* mine, uint64_t* all) = 0;  // one value per rank -> (size)
  virtual void broadcast(Tensor& t, int root) = 0;
  virtual void barrier() = 0;
  // Ranks with the same color form a new communicator, ordered by key.
  virtual std::unique_ptr<Communicator> split(int color, int key) = 0;
};

// MPI_COMM_WORLD (MPI must be initialised).
std::unique_ptr<Communicator> mpi_world();

}  // namespace rt
