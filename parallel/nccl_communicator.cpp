// The NCCL Communicator: GPU tensors over NCCL on a communication stream, host values over MPI, and a watchdog.
#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>

#include "core/check.h"
#include "core/cuda/cuda_context.h"
#include "parallel/communicator.h"

namespace rt {

std::string format_nccl_error(int code) {
  return std::string(ncclGetErrorString(static_cast<ncclResult_t>(code))) + " (ncclResult_t " + std::to_string(code) +
         ")";
}

namespace {

using Clock = std::chrono::steady_clock;

// 2 -> "2", 0.5 -> "0.5": seconds as a user wrote them.
std::string seconds_text(double s) {
  std::ostringstream out;
  out << s;
  return out.str();
}

// Follows every NCCL operation a communicator queued until its completion event fires. A thread polls every
// 100 ms; when an operation is older than the timeout, or NCCL reports an asynchronous error, it aborts the NCCL
// communicator (so that no kernel of this rank waits forever) and ends the job through the fatal handler, naming
// the operation, its age and the rank.
class Watchdog {
 public:
  Watchdog(ncclComm_t comm, int rank, double timeout_s)
      : comm_(comm), rank_(rank), timeout_s_(timeout_s), device_(cuda_device()), thread_([this] { run(); }) {}
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
    for (auto& [id, op] : pending_) cudaEventDestroy(op.done);
  }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // Follows an operation whose completion `done` was recorded on; the watchdog owns the event from now on.
  int64_t track(cudaEvent_t done, std::string what) {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.emplace(next_id_, Pending{done, std::move(what), Clock::now()});
    return next_id_++;
  }

  // Makes `stream` wait for operation `id` (nothing to wait for once it has completed).
  void stream_wait(int64_t id, cudaStream_t stream) {
    std::lock_guard<std::mutex> lock(mu_);  // the event cannot be destroyed meanwhile
    auto it = pending_.find(id);
    if (it != pending_.end()) RT_CHECK_CUDA(cudaStreamWaitEvent(stream, it->second.done, 0));
  }

 private:
  struct Pending {
    cudaEvent_t done;
    std::string what;
    Clock::time_point since;
  };

  void run() {
    RT_CHECK_CUDA(cudaSetDevice(device_));
    std::unique_lock<std::mutex> lock(mu_);
    while (!cv_.wait_for(lock, std::chrono::milliseconds(100), [this] { return stop_; })) {
      for (auto it = pending_.begin(); it != pending_.end();) {
        const cudaError_t rc = cudaEventQuery(it->second.done);
        if (rc == cudaSuccess) {
          cudaEventDestroy(it->second.done);
          it = pending_.erase(it);
          continue;
        }
        if (rc != cudaErrorNotReady) RT_CHECK_CUDA(rc);
        const double age = std::chrono::duration<double>(Clock::now() - it->second.since).count();
        if (age > timeout_s_)
          abort_job("NCCL " + it->second.what + " at step " + std::to_string(comm_step()) + " has not completed " +
                    std::to_string(static_cast<int>(age)) + " s after it was issued (timeout " +
                    seconds_text(timeout_s_) + " s, parallel.comm_timeout_s): a peer rank is probably stuck or dead");
        ++it;
      }
      ncclResult_t async = ncclSuccess;
      if (ncclCommGetAsyncError(comm_, &async) == ncclSuccess && async != ncclSuccess && async != ncclInProgress)
        abort_job("NCCL reported an asynchronous error: " + format_nccl_error(async));
    }
  }

  [[noreturn]] void abort_job(const std::string& why) {
    ncclCommAbort(comm_);
    fatal(why + " (communicator rank " + std::to_string(rank_) + "; NCCL communicator aborted)", __FILE__, __LINE__);
  }

  ncclComm_t comm_;
  int rank_;
  double timeout_s_;
  int device_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::map<int64_t, Pending> pending_;
  int64_t next_id_ = 0;
  std::thread thread_;  // last: starts after the members it uses
};

ncclDataType_t nccl_type(const Tensor& t) {
  return t.dtype() == DType::f32 ? ncclFloat32 : t.dtype() == DType::i32 ? ncclInt32 : ncclBfloat16;
}

// NCCL handles are stored as negative request ids: -(watchdog id + 1); MPI's are not negative.
int64_t nccl_request(int64_t id) { return -(id + 1); }

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(std::unique_ptr<Communicator> host, ncclComm_t comm, double timeout_s)
      : host_(std::move(host)), comm_(comm), timeout_s_(timeout_s), compute_(cuda_stream()) {
    RT_CHECK_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    RT_CHECK_CUDA(cudaEventCreateWithFlags(&ready_, cudaEventDisableTiming));
    watchdog_ = std::make_unique<Watchdog>(comm_, host_->rank(), timeout_s);
  }
  ~NcclCommunicator() override {
    cudaStreamSynchronize(stream_);
    watchdog_.reset();
    ncclCommDestroy(comm_);
    cudaEventDestroy(ready_);
    cudaStreamDestroy(stream_);
  }
  int rank() const override { return host_->rank(); }
  int size() const override { return host_->size(); }

  // One ncclGroupStart/End with the send and the receive, on the communication stream after the compute stream's
  // work so far (which produced `send` and last read `recv`).
  CommHandle sendrecv_async(const Tensor& send, int dst, Tensor& recv, int src) override {
    RT_CHECK(send.dtype() == recv.dtype() && send.numel() == recv.numel(), "sendrecv of different shapes");
    if (send.device() == Device::cpu && recv.device() == Device::cpu) return host_->sendrecv_async(send, dst, recv, src);
    on_gpu(send, "sendrecv");
    on_gpu(recv, "sendrecv");
    after_compute();
    RT_CHECK_NCCL(ncclGroupStart());
    RT_CHECK_NCCL(ncclSend(send.raw(), static_cast<size_t>(send.numel()), nccl_type(send), dst, comm_, stream_));
    RT_CHECK_NCCL(ncclRecv(recv.raw(), static_cast<size_t>(recv.numel()), nccl_type(recv), src, comm_, stream_));
    RT_CHECK_NCCL(ncclGroupEnd());
    CommHandle h;
    h.requests.push_back(nccl_request(issued("send to rank " + std::to_string(dst) + " / receive from rank " +
                                             std::to_string(src) + " (" + std::to_string(send.bytes()) + " bytes)")));
    return h;
  }
  // The compute stream waits for the transfer; the host does not.
  void wait(CommHandle& h) override {
    if (!h.pending()) return;
    if (h.requests[0] >= 0) return host_->wait(h);
    for (int64_t r : h.requests) watchdog_->stream_wait(-r - 1, compute_);
    h.requests.clear();
  }
  void all_reduce_sum(Tensor& t) override {
    RT_CHECK(t.dtype() == DType::f32, "all_reduce_sum of a non-f32 tensor");
    if (t.device() == Device::cpu) return host_->all_reduce_sum(t);
    if (size() == 1) return;
    after_compute();
    RT_CHECK_NCCL(ncclAllReduce(t.raw(), t.raw(), static_cast<size_t>(t.numel()), ncclFloat32, ncclSum, comm_, stream_));
    compute_waits(issued("all-reduce of " + std::to_string(t.bytes()) + " bytes"));
  }
  void all_reduce_sum(double* values, int count) override { host_->all_reduce_sum(values, count); }
  void all_gather(const uint64_t* mine, uint64_t* all) override { host_->all_gather(mine, all); }
  std::vector<std::string> host_names() override { return host_->host_names(); }
  // One group of a send and a receive per peer (NCCL has no all-to-all of its own).
  void all_to_all(const Tensor& send, Tensor& recv) override {
    RT_CHECK(send.dtype() == recv.dtype() && send.numel() == recv.numel() && send.numel() % size() == 0 &&
                 send.raw() != recv.raw(),
             "all_to_all of " + send.shape_string() + " into " + recv.shape_string());
    if (send.device() == Device::cpu && recv.device() == Device::cpu) return host_->all_to_all(send, recv);
    on_gpu(send, "all_to_all");
    on_gpu(recv, "all_to_all");
    const size_t block = static_cast<size_t>(send.numel() / size()), bytes = block * dtype_size(send.dtype());
    after_compute();
    RT_CHECK_NCCL(ncclGroupStart());
    for (int peer = 0; peer < size(); ++peer) {
      RT_CHECK_NCCL(ncclSend(static_cast<const char*>(send.raw()) + peer * bytes, block, nccl_type(send), peer, comm_,
                             stream_));
      RT_CHECK_NCCL(ncclRecv(static_cast<char*>(recv.raw()) + peer * bytes, block, nccl_type(recv), peer, comm_,
                             stream_));
    }
    RT_CHECK_NCCL(ncclGroupEnd());
    compute_waits(issued("all-to-all of " + std::to_string(send.bytes()) + " bytes"));
  }
  void broadcast(Tensor& t, int root) override {
    if (t.device() == Device::cpu) return host_->broadcast(t, root);
    after_compute();
    RT_CHECK_NCCL(ncclBroadcast(t.raw(), t.raw(), static_cast<size_t>(t.numel()), nccl_type(t), root, comm_, stream_));
    compute_waits(issued("broadcast from rank " + std::to_string(root)));
  }
  // Every rank's queued GPU work done, then an MPI barrier.
  void barrier() override {
    RT_CHECK_CUDA(cudaStreamSynchronize(compute_));
    RT_CHECK_CUDA(cudaStreamSynchronize(stream_));
    host_->barrier();
  }
  std::unique_ptr<Communicator> split(int color, int key) override {
    std::unique_ptr<Communicator> host = host_->split(color, key);
    ncclComm_t sub = nullptr;
    RT_CHECK_NCCL(ncclCommSplit(comm_, color, key, &sub, nullptr));
    return std::make_unique<NcclCommunicator>(std::move(host), sub, timeout_s_);
  }

 private:
  static void on_gpu(const Tensor& t, const char* what) {
    RT_CHECK(t.device() == Device::cuda, std::string(what) + ": tensor " + t.shape_string() + " is not on the GPU");
  }
  // The communication stream waits for the compute stream's work queued so far.
  void after_compute() {
    RT_CHECK_CUDA(cudaEventRecord(ready_, compute_));
    RT_CHECK_CUDA(cudaStreamWaitEvent(stream_, ready_, 0));
  }
  // Records the completion of the operation just queued and hands it to the watchdog.
  int64_t issued(std::string what) {
    cudaEvent_t done;
    RT_CHECK_CUDA(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
    RT_CHECK_CUDA(cudaEventRecord(done, stream_));
    return watchdog_->track(done, std::move(what));
  }
  void compute_waits(int64_t id) { watchdog_->stream_wait(id, compute_); }

  std::unique_ptr<Communicator> host_;  // MPI over the same ranks: host values, CPU tensors, the split
  ncclComm_t comm_;
  double timeout_s_;
  cudaStream_t compute_;
  cudaStream_t stream_ = nullptr;  // communication stream
  cudaEvent_t ready_ = nullptr;
  std::unique_ptr<Watchdog> watchdog_;
};

}  // namespace

std::unique_ptr<Communicator> nccl_world(double timeout_s) {
  std::unique_ptr<Communicator> host = mpi_world(timeout_s);
  // This rank's GPU: its rank among the ranks of its node.
  MPI_Comm node;
  RT_CHECK_MPI(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node));
  int local_rank = 0;
  RT_CHECK_MPI(MPI_Comm_rank(node, &local_rank));
  RT_CHECK_MPI(MPI_Comm_free(&node));
  cuda_device_select(local_rank);
  cuda_device();  // makes it current and creates the compute stream
  ncclUniqueId id;
  if (host->rank() == 0) RT_CHECK_NCCL(ncclGetUniqueId(&id));
  RT_CHECK_MPI(MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD));
  ncclComm_t comm = nullptr;
  RT_CHECK_NCCL(ncclCommInitRank(&comm, host->size(), id, host->rank()));
  return std::make_unique<NcclCommunicator>(std::move(host), comm, timeout_s);
}

}  // namespace rt
