// The MPI Communicator: neighbour exchange that overlaps compute, reductions, broadcast, split; each blocking operation
// held to the watchdog's deadline.
#include <mpi.h>

#include <memory>
#include <string>
#include <vector>

#include "core/check.h"
#include "parallel/communicator.h"
#include "parallel/mpi_exchange_thread.h"
#include "parallel/mpi_watchdog.h"
#include "parallel/topology.h"

namespace rt {
namespace {

MPI_Datatype mpi_type(const Tensor& t) {
  return t.dtype() == DType::f32 ? MPI_FLOAT : t.dtype() == DType::i32 ? MPI_INT32_T : MPI_UINT16_T;
}

int count_of(const Tensor& t) {
  RT_CHECK(t.numel() <= INT32_MAX, "message of " + std::to_string(t.numel()) + " elements is too large for MPI");
  return static_cast<int>(t.numel());
}

// The elements each rank sends to each other in all_to_all.
int all_to_all_block(const Tensor& send, const Tensor& recv, int size) {
  RT_CHECK(send.dtype() == recv.dtype() && send.numel() == recv.numel() && send.numel() % size == 0 &&
               send.raw() != recv.raw(),
           "all_to_all of " + send.shape_string() + " into " + recv.shape_string() + " over " + std::to_string(size) +
               " ranks");
  return count_of(send) / size;
}

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator(MPI_Comm comm, bool owned, std::shared_ptr<MpiWatchdog> watchdog)
      : comm_(comm), owned_(owned), watchdog_(std::move(watchdog)) {
    RT_CHECK_MPI(MPI_Comm_rank(comm_, &rank_));
    RT_CHECK_MPI(MPI_Comm_size(comm_, &size_));
    MPI_Group mine, world;
    RT_CHECK_MPI(MPI_Comm_group(comm_, &mine));
    RT_CHECK_MPI(MPI_Comm_group(MPI_COMM_WORLD, &world));
    std::vector<int> local(static_cast<size_t>(size_));
    for (int r = 0; r < size_; ++r) local[static_cast<size_t>(r)] = r;
    world_ranks_.resize(local.size());
    RT_CHECK_MPI(MPI_Group_translate_ranks(mine, size_, local.data(), world, world_ranks_.data()));
    MPI_Group_free(&mine);
    MPI_Group_free(&world);
    group_ = " over " + ranks_text(world_ranks_);
    if (mpi_thread_multiple()) exchanges_ = std::make_unique<MpiExchangeThread>(comm_, watchdog_.get());
  }
  ~MpiCommunicator() override {
    exchanges_.reset();  // joins the thread before the communicator goes
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (owned_ && !finalized) MPI_Comm_free(&comm_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  CommHandle sendrecv_async(const Tensor& send, int dst, Tensor& recv, int src) override {
    RT_CHECK(send.dtype() == recv.dtype() && send.numel() == recv.numel(), "sendrecv of different shapes");
    if (exchanges_)
      return {{exchanges_->post(send.raw(), recv.raw(), count_of(send), mpi_type(send), dst, src, kTag,
                                exchange_text(send, dst, src))}};
    MPI_Request reqs[2];
    RT_CHECK_MPI(MPI_Irecv(recv.raw(), count_of(recv), mpi_type(recv), src, kTag, comm_, &reqs[0]));
    RT_CHECK_MPI(MPI_Isend(send.raw(), count_of(send), mpi_type(send), dst, kTag, comm_, &reqs[1]));
    CommHandle h;
    for (MPI_Request r : reqs) h.requests.push_back(static_cast<int64_t>(MPI_Request_c2f(r)));
    return h;
  }
  void wait(CommHandle& h) override {
    if (exchanges_) {
      for (int64_t id : h.requests) exchanges_->wait(id);
      h.requests.clear();
      return;
    }
    std::vector<MPI_Request> reqs;
    for (int64_t r : h.requests) reqs.push_back(MPI_Request_f2c(static_cast<MPI_Fint>(r)));
    MpiWatchdog::Watch watch(watchdog_.get(), "wait for a neighbour exchange" + group_);
    RT_CHECK_MPI(MPI_Waitall(static_cast<int>(reqs.size()), reqs.data(), MPI_STATUSES_IGNORE));
    h.requests.clear();
  }
  void all_reduce_sum(Tensor& t) override {
    RT_CHECK(t.dtype() == DType::f32, "all_reduce_sum of a non-f32 tensor");
    if (size_ == 1) return;
    MpiWatchdog::Watch watch(watchdog_.get(), "all_reduce_sum of " + std::to_string(t.numel()) + " floats" + group_);
    RT_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, t.raw(), count_of(t), MPI_FLOAT, MPI_SUM, comm_));
  }
  void all_reduce_sum(double* values, int count) override {
    if (size_ == 1) return;
    MpiWatchdog::Watch watch(watchdog_.get(), "all_reduce_sum of " + std::to_string(count) + " doubles" + group_);
    RT_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, values, count, MPI_DOUBLE, MPI_SUM, comm_));
  }
  void all_gather(const uint64_t* mine, uint64_t* all) override {
    MpiWatchdog::Watch watch(watchdog_.get(), "all_gather" + group_);
    RT_CHECK_MPI(MPI_Allgather(mine, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, comm_));
  }
  void all_to_all(const Tensor& send, Tensor& recv) override {
    const int block = all_to_all_block(send, recv, size_);
    MpiWatchdog::Watch watch(watchdog_.get(), "all_to_all of " + std::to_string(send.numel()) + " values" + group_);
    RT_CHECK_MPI(MPI_Alltoall(send.raw(), block, mpi_type(send), recv.raw(), block, mpi_type(recv), comm_));
  }
  std::vector<std::string> host_names() override {
    char mine[MPI_MAX_PROCESSOR_NAME] = {};
    int len = 0;
    RT_CHECK_MPI(MPI_Get_processor_name(mine, &len));
    std::vector<char> all(static_cast<size_t>(size_) * MPI_MAX_PROCESSOR_NAME);
    {
      MpiWatchdog::Watch watch(watchdog_.get(), "all_gather of host names" + group_);
      RT_CHECK_MPI(MPI_Allgather(mine, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, all.data(), MPI_MAX_PROCESSOR_NAME, MPI_CHAR,
                                 comm_));
    }
    std::vector<std::string> names;
    for (int r = 0; r < size_; ++r) names.emplace_back(all.data() + static_cast<size_t>(r) * MPI_MAX_PROCESSOR_NAME);
    return names;
  }
  void broadcast(Tensor& t, int root) override {
    MpiWatchdog::Watch watch(watchdog_.get(), "broadcast of " + std::to_string(t.numel()) + " values from rank " +
                                                  std::to_string(world_ranks_[static_cast<size_t>(root)]) + group_);
    RT_CHECK_MPI(MPI_Bcast(t.raw(), count_of(t), mpi_type(t), root, comm_));
  }
  void barrier() override {
    MpiWatchdog::Watch watch(watchdog_.get(), "barrier" + group_);
    RT_CHECK_MPI(MPI_Barrier(comm_));
  }
  std::unique_ptr<Communicator> split(int color, int key) override {
    MPI_Comm sub;
    {
      MpiWatchdog::Watch watch(watchdog_.get(), "communicator split" + group_);
      RT_CHECK_MPI(MPI_Comm_split(comm_, color, key, &sub));
    }
    return std::make_unique<MpiCommunicator>(sub, true, watchdog_);
  }

 private:
  std::string rank_name(int rank) const {
    const int world = world_ranks_[static_cast<size_t>(rank)];
    return watchdog_ ? watchdog_->rank_name(world) : "rank " + std::to_string(world);
  }
  std::string exchange_text(const Tensor& t, int dst, int src) const {
    return "ring exchange of " + std::to_string(t.numel()) + " values (send to " + rank_name(dst) +
           ", receive from " + rank_name(src) + ")";
  }

  static constexpr int kTag = 7;
  MPI_Comm comm_;
  bool owned_;
  int rank_ = 0, size_ = 1;
  std::shared_ptr<MpiWatchdog> watchdog_;  // with MPI_THREAD_MULTIPLE; shared by the world and its splits
  std::vector<int> world_ranks_;           // this communicator's ranks in MPI_COMM_WORLD
  std::string group_;                      // " over ranks 0-3", for the watchdog
  std::unique_ptr<MpiExchangeThread> exchanges_;  // with MPI_THREAD_MULTIPLE; else MPI_Isend/Irecv
};

}  // namespace

std::unique_ptr<Communicator> mpi_world(double timeout_s) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  RT_CHECK(initialized, "MPI is not initialised");
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);  // errors reach RT_CHECK_MPI's message
  std::shared_ptr<MpiWatchdog> watchdog;
  if (mpi_thread_multiple()) watchdog = std::make_shared<MpiWatchdog>(timeout_s);
  return std::make_unique<MpiCommunicator>(MPI_COMM_WORLD, false, std::move(watchdog));
}

}  // namespace rt
