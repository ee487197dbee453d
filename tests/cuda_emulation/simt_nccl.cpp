// The NCCL entry points the project calls, for the SIMT emulator's GPUs: each NCCL communicator is an MPI communicator
// over the same ranks (ordered by NCCL rank), and each operation runs over MPI when it is queued (grouped sends and
// receives together at ncclGroupEnd, as NCCL pairs them). Buffers are checked against the live device allocations.
#include "tests/cuda_emulation/simt.h"  // first: it defines the CUDA keywords

#include <mpi.h>
#include <nccl.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "tests/cuda_emulation/simt_limits.h"

struct ncclComm {
  MPI_Comm mpi;
  int rank, size;
};

namespace {

constexpr int kHangSeconds = 60;

MPI_Datatype mpi_type(ncclDataType_t t) {
  switch (t) {
    case ncclFloat32: return MPI_FLOAT;
    case ncclFloat64: return MPI_DOUBLE;
    case ncclInt32: return MPI_INT32_T;
    case ncclInt64: return MPI_INT64_T;
    case ncclUint8: return MPI_UINT8_T;
    default: simt::fail("emulated NCCL: a data type the project does not use");
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
};

thread_local int group_depth = 0;
thread_local std::vector<P2p> group;

// Receives first, then sends, then waits for all: what a group's send/receive pairs need never to deadlock.
void run_group() {
  std::vector<MPI_Request> requests;
  for (bool sends : {false, true})
    for (const P2p& op : group) {
      if (op.send != sends) continue;
      if (op.peer < 0 || op.peer >= op.comm->size) simt::fail("emulated NCCL: send or receive to a rank outside the communicator");
      simt::check_device_range(op.buffer, op.count * type_bytes(op.type), op.send ? "ncclSend buffer" : "ncclRecv buffer");
      requests.emplace_back();
      const int count = static_cast<int>(op.count);
      if (op.send)
        check_mpi(MPI_Isend(op.buffer, count, mpi_type(op.type), op.peer, 0, op.comm->mpi, &requests.back()), "send");
      else
        check_mpi(MPI_Irecv(op.buffer, count, mpi_type(op.type), op.peer, 0, op.comm->mpi, &requests.back()), "recv");
    }
  // Real NCCL queues the group and returns, and the communicator's watchdog ends a hang; here the group runs now, so
  // a hang (peers that do not pair up) is ended here, with its reason.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(kHangSeconds);
  for (int done = 0; !done;) {
    check_mpi(MPI_Testall(static_cast<int>(requests.size()), requests.data(), &done, MPI_STATUSES_IGNORE), "wait");
    if (!done) std::this_thread::sleep_for(std::chrono::microseconds(50));  // leave the core to the peer's kernels
    if (!done && std::chrono::steady_clock::now() > deadline)
      simt::fail(("emulated NCCL: a group of " + std::to_string(group.size()) + " sends and receives has not completed in " +
                  std::to_string(kHangSeconds) + " s: the ranks' sends and receives do not pair up")
                     .c_str());
  }
  group.clear();
}

ncclResult_t add_p2p(const P2p& op) {
  group.push_back(op);
  if (group_depth == 0) run_group();  // outside a group: a group of one
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
ncclResult_t ncclCommAbort(ncclComm_t comm) { return ncclCommDestroy(comm); }
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
  if (--group_depth == 0) run_group();
  return ncclSuccess;
}

ncclResult_t ncclSend(const void* buffer, size_t count, ncclDataType_t type, int peer, ncclComm_t comm, cudaStream_t) {
  return add_p2p({true, const_cast<void*>(buffer), count, type, peer, comm});
}
ncclResult_t ncclRecv(void* buffer, size_t count, ncclDataType_t type, int peer, ncclComm_t comm, cudaStream_t) {
  return add_p2p({false, buffer, count, type, peer, comm});
}

ncclResult_t ncclAllReduce(const void* send, void* recv, size_t count, ncclDataType_t type, ncclRedOp_t op,
                           ncclComm_t comm, cudaStream_t) {
  if (op != ncclSum) simt::fail("emulated NCCL: only ncclSum is emulated");
  simt::check_device_range(send, count * type_bytes(type), "ncclAllReduce send buffer");
  simt::check_device_range(recv, count * type_bytes(type), "ncclAllReduce receive buffer");
  check_mpi(MPI_Allreduce(send == recv ? MPI_IN_PLACE : send, recv, static_cast<int>(count), mpi_type(type), MPI_SUM,
                          comm->mpi),
            "ncclAllReduce");
  return ncclSuccess;
}

ncclResult_t ncclBroadcast(const void* send, void* recv, size_t count, ncclDataType_t type, int root, ncclComm_t comm,
                           cudaStream_t) {
  const size_t bytes = count * type_bytes(type);
  simt::check_device_range(recv, bytes, "ncclBroadcast receive buffer");
  if (comm->rank == root) {
    simt::check_device_range(send, bytes, "ncclBroadcast send buffer");
    if (send != recv) std::memmove(recv, send, bytes);
  }
  check_mpi(MPI_Bcast(recv, static_cast<int>(count), mpi_type(type), root, comm->mpi), "ncclBroadcast");
  return ncclSuccess;
}
