// The NCCL entry points the project calls, for the SIMT emulator's GPUs: each NCCL communicator is an MPI communicator
// over the same ranks (ordered by NCCL rank). A group's sends and receives are posted together at ncclGroupEnd and
// stay in flight on their stream until waited for (simt_streams.h); the collectives run when queued. Buffers are
// checked against the live device allocations.
#include "tests/cuda_emulation/simt.h"  // first: it defines the CUDA keywords

#include <mpi.h>
#include <nccl.h>

#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "tests/cuda_emulation/simt_limits.h"
#include "tests/cuda_emulation/simt_streams.h"

struct ncclComm {
  MPI_Comm mpi;
  int rank, size;
};

namespace {

MPI_Datatype mpi_type(ncclDataType_t t) {
  switch (t) {
    case ncclFloat32:
      return MPI_FLOAT;
    case ncclFloat64:
      return MPI_DOUBLE;
    case ncclInt32:
      return MPI_INT32_T;
    case ncclInt64:
      return MPI_INT64_T;
    case ncclUint8:
      return MPI_UINT8_T;
    case ncclBfloat16:
      return MPI_UINT16_T;  // moved, never reduced
    default:
      simt::fail("emulated NCCL: a data type the project does not use");
  }
}

size_t type_bytes(ncclDataType_t t) {
  int bytes = 0;
  MPI_Type_size(mpi_type(t), &bytes);
  return static_cast<size_t>(bytes);
}

void check_mpi(int rc, const char* what) {
  if (rc != MPI_SUCCESS) simt::fail((std::string("emulated NCCL: ") + what + " failed in MPI").c_str());
}

struct P2p {
  bool send;
  void* buffer;
  size_t count;
  ncclDataType_t type;
  int peer;
  ncclComm_t comm;
  cudaStream_t stream;
};

thread_local int group_depth = 0;
thread_local std::vector<P2p> group;
std::mutex requests_mutex;  // MPI forbids testing one request from two threads at once (the watchdog polls)

// Posts the group's receives and sends and leaves them in flight on `stream` (after what is in flight there) until
// an event wait, a synchronisation or the watchdog's query finds them complete.
void run_group(cudaStream_t stream) {
  simt::wait_complete(simt::stream_in_flight(stream));  // stream order
  auto requests = std::make_shared<std::vector<MPI_Request>>();
  std::string what;
  for (bool sends : {false, true})
    for (const P2p& op : group) {
      if (op.send != sends) continue;
      if (op.peer < 0 || op.peer >= op.comm->size)
        simt::fail("emulated NCCL: send or receive to a rank outside the communicator");
      simt::check_device_range(op.buffer, op.count * type_bytes(op.type),
                               op.send ? "ncclSend buffer" : "ncclRecv buffer");
      requests->emplace_back();
      const int count = static_cast<int>(op.count);
      std::lock_guard<std::mutex> lock(requests_mutex);
      if (op.send)
        check_mpi(MPI_Isend(op.buffer, count, mpi_type(op.type), op.peer, 0, op.comm->mpi, &requests->back()), "send");
      else
        check_mpi(MPI_Irecv(op.buffer, count, mpi_type(op.type), op.peer, 0, op.comm->mpi, &requests->back()), "recv");
      what += std::string(what.empty() ? "a group of " : ", ") + (op.send ? "a send to rank " : "a receive from rank ") +
              std::to_string(op.peer);
    }
  group.clear();
  auto done = std::make_shared<bool>(false);
  simt::stream_add(stream, std::make_shared<simt::InFlight>(
                               simt::InFlight{what, [requests, done] {
                                                std::lock_guard<std::mutex> lock(requests_mutex);
                                                if (*done) return true;
                                                int complete = 0;
                                                check_mpi(MPI_Testall(static_cast<int>(requests->size()),
                                                                      requests->data(), &complete, MPI_STATUSES_IGNORE),
                                                          "test");
                                                *done = complete != 0;
                                                return *done;
                                              }}));
}

ncclResult_t add_p2p(const P2p& op, cudaStream_t stream) {
  if (!group.empty() && group.back().stream != stream) simt::fail("emulated NCCL: one group on two streams");
  group.push_back(op);
  if (group_depth == 0) run_group(stream);  // outside a group: a group of one
  return ncclSuccess;
}

}  // namespace

const char* ncclGetErrorString(ncclResult_t result) {
  return result == ncclSuccess ? "no error" : "error reported by the SIMT emulator's NCCL";
}

ncclResult_t ncclGetUniqueId(ncclUniqueId* id) {
  std::memset(id, 0, sizeof *id);
  std::strcpy(id->internal, "ringtrain SIMT emulator");
  return ncclSuccess;
}

// Over all MPI ranks (as nccl_world creates it); sub-communicators come from ncclCommSplit.
ncclResult_t ncclCommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId id, int rank) {
  int world = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  if (nranks != world || std::strcmp(id.internal, "ringtrain SIMT emulator") != 0)
    simt::fail("emulated NCCL: ncclCommInitRank is emulated over all MPI ranks with an emulated unique id only");
  *comm = new ncclComm{MPI_COMM_NULL, rank, nranks};
  check_mpi(MPI_Comm_split(MPI_COMM_WORLD, 0, rank, &(*comm)->mpi), "ncclCommInitRank");
  return ncclSuccess;
}

ncclResult_t ncclCommSplit(ncclComm_t comm, int color, int key, ncclComm_t* newcomm, ncclConfig_t*) {
  MPI_Comm sub = MPI_COMM_NULL;
  check_mpi(MPI_Comm_split(comm->mpi, color == NCCL_SPLIT_NOCOLOR ? MPI_UNDEFINED : color, key, &sub), "ncclCommSplit");
  if (sub == MPI_COMM_NULL) {
    *newcomm = nullptr;
    return ncclSuccess;
  }
  *newcomm = new ncclComm{sub, 0, 0};
  MPI_Comm_rank(sub, &(*newcomm)->rank);
  MPI_Comm_size(sub, &(*newcomm)->size);
  return ncclSuccess;
}

ncclResult_t ncclCommDestroy(ncclComm_t comm) {
  if (!comm) return ncclSuccess;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Comm_free(&comm->mpi);
  delete comm;
  return ncclSuccess;
}
ncclResult_t ncclCommAbort(ncclComm_t) { return ncclSuccess; }  // the caller ends the job next
ncclResult_t ncclCommGetAsyncError(ncclComm_t, ncclResult_t* error) {
  *error = ncclSuccess;
  return ncclSuccess;
}

ncclResult_t ncclGroupStart() {
  ++group_depth;
  return ncclSuccess;
}
ncclResult_t ncclGroupEnd() {
  if (group_depth == 0) return ncclInvalidUsage;
  if (--group_depth == 0 && !group.empty()) run_group(group.front().stream);
  return ncclSuccess;
}

ncclResult_t ncclSend(const void* buffer, size_t count, ncclDataType_t type, int peer, ncclComm_t comm,
                      cudaStream_t stream) {
  return add_p2p({true, const_cast<void*>(buffer), count, type, peer, comm, stream}, stream);
}
ncclResult_t ncclRecv(void* buffer, size_t count, ncclDataType_t type, int peer, ncclComm_t comm, cudaStream_t stream) {
  return add_p2p({false, buffer, count, type, peer, comm, stream}, stream);
}

// The collectives complete when queued, after what is in flight on their stream.
ncclResult_t ncclAllReduce(const void* send, void* recv, size_t count, ncclDataType_t type, ncclRedOp_t op,
                           ncclComm_t comm, cudaStream_t stream) {
  if (op != ncclSum) simt::fail("emulated NCCL: only ncclSum is emulated");
  simt::wait_complete(simt::stream_in_flight(stream));
  simt::check_device_range(send, count * type_bytes(type), "ncclAllReduce send buffer");
  simt::check_device_range(recv, count * type_bytes(type), "ncclAllReduce receive buffer");
  check_mpi(MPI_Allreduce(send == recv ? MPI_IN_PLACE : send, recv, static_cast<int>(count), mpi_type(type), MPI_SUM,
                          comm->mpi),
            "ncclAllReduce");
  return ncclSuccess;
}

ncclResult_t ncclBroadcast(const void* send, void* recv, size_t count, ncclDataType_t type, int root, ncclComm_t comm,
                           cudaStream_t stream) {
  simt::wait_complete(simt::stream_in_flight(stream));
  const size_t bytes = count * type_bytes(type);
  simt::check_device_range(recv, bytes, "ncclBroadcast receive buffer");
  if (comm->rank == root) {
    simt::check_device_range(send, bytes, "ncclBroadcast send buffer");
    if (send != recv) std::memmove(recv, send, bytes);
  }
  check_mpi(MPI_Bcast(recv, static_cast<int>(count), mpi_type(type), root, comm->mpi), "ncclBroadcast");
  return ncclSuccess;
}
