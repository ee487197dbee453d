// The MPI watchdog: liveness probes on a duplicate of MPI_COMM_WORLD, deadlines on blocking operations, one verdict.
#include "parallel/mpi_watchdog.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "core/check.h"

namespace rt {
namespace {

std::atomic<int64_t> g_step{0};

// Message tags on the watchdog's communicator.
constexpr int kProbe = 1, kAnswer = 2, kVerdict = 3;
constexpr int kInboxBytes = 2048;
constexpr auto kPollInterval = std::chrono::milliseconds(20);
// How long a rank that printed its verdict lets the others print theirs before it ends the job. When a peer on another
// host is silent the wait is longer: an mpirun that asked a daemon it cannot reach to end its ranks waits for the
// answer until TCP gives up (~15 min), so it must first notice the lost daemon by itself, through TCP keepalive on its
// daemon connections, which launch/run.sh sets to fire parallel.comm_timeout_s + 2..4 s after a link goes down.
// How long a probe waits for the answers (they take a few poll intervals).
constexpr double kProbeSeconds = 1.0;
constexpr double kGraceSeconds = 1.0, kPartitionGraceSeconds = 5.0;

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, s < 10 ? "%.1f" : "%.0f", s);
  return buf;
}

std::string step_text(int64_t step) { return step > 0 ? " at step " + std::to_string(step) : " before the first step"; }

}  // namespace

void comm_step_set(int64_t step) { g_step.store(step, std::memory_order_relaxed); }
int64_t comm_step() { return g_step.load(std::memory_order_relaxed); }

struct MpiWatchdog::Status {
  int64_t step = 0;
  int32_t in_op = 0;    // 1 while an operation is in progress
  float waited_s = 0;   // how long the oldest operation in progress has waited
  float outside_s = 0;  // with none in progress: since the last one ended
  char what[200] = {};  // the oldest operation in progress
};

MpiWatchdog::MpiWatchdog(double timeout_s) : timeout_s_(timeout_s), idle_since_(Clock::now()) {
  RT_CHECK_MPI(MPI_Comm_dup(MPI_COMM_WORLD, &comm_));
  MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);  // a probe of a dead peer fails quietly: it does not answer
  RT_CHECK_MPI(MPI_Comm_rank(comm_, &rank_));
  RT_CHECK_MPI(MPI_Comm_size(comm_, &size_));
  char mine[MPI_MAX_PROCESSOR_NAME] = {};
  int len = 0;
  MPI_Get_processor_name(mine, &len);
  std::vector<char> all(static_cast<size_t>(size_) * MPI_MAX_PROCESSOR_NAME);
  RT_CHECK_MPI(
      MPI_Allgather(mine, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, all.data(), MPI_MAX_PROCESSOR_NAME, MPI_CHAR, comm_));
  for (int r = 0; r < size_; ++r) hosts_.emplace_back(all.data() + static_cast<size_t>(r) * MPI_MAX_PROCESSOR_NAME);
  inbox_.resize(kInboxBytes);
  RT_CHECK_MPI(MPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, &MpiWatchdog::on_finalize, &keyval_, nullptr));
  RT_CHECK_MPI(MPI_Comm_set_attr(MPI_COMM_SELF, keyval_, this));
  thread_ = std::thread([this] { run(); });
}

// MPI_Finalize first calls the delete callbacks of MPI_COMM_SELF's attributes, while MPI still works: the watchdog
// stops there when a communicator outlives MPI (a program that finalizes before destroying its communicators).
int MpiWatchdog::on_finalize(MPI_Comm, int, void* watchdog, void*) {
  static_cast<MpiWatchdog*>(watchdog)->stop();
  return MPI_SUCCESS;
}

void MpiWatchdog::stop() {
  {
    std::lock_guard<std::mutex> lock(stop_mutex_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

MpiWatchdog::~MpiWatchdog() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) {
    MPI_Comm_delete_attr(MPI_COMM_SELF, keyval_);  // runs on_finalize: stops the thread
    MPI_Comm_free_keyval(&keyval_);
  }
  stop();
}

std::string MpiWatchdog::rank_name(int world_rank) const {
  return "rank " + std::to_string(world_rank) + " on " + hosts_[static_cast<size_t>(world_rank)];
}

MpiWatchdog::Watch::Watch(MpiWatchdog* dog, std::string what) : dog_(dog) {
  if (dog_) slot_ = dog_->begin(std::move(what));
}
MpiWatchdog::Watch::~Watch() {
  if (dog_) dog_->end(slot_);
}

int MpiWatchdog::begin(std::string what) {
  std::lock_guard<std::mutex> lock(mutex_);
  size_t i = 0;
  while (i < slots_.size() && slots_[i].active) ++i;
  if (i == slots_.size()) slots_.emplace_back();
  slots_[i] = {true, std::move(what), Clock::now()};
  return static_cast<int>(i);
}

void MpiWatchdog::end(int slot) {
  std::lock_guard<std::mutex> lock(mutex_);
  slots_[static_cast<size_t>(slot)].active = false;
  idle_since_ = Clock::now();
}

MpiWatchdog::Status MpiWatchdog::status_now() {
  Status s;
  s.step = comm_step();
  std::lock_guard<std::mutex> lock(mutex_);
  const Slot* oldest = nullptr;
  for (const Slot& slot : slots_)
    if (slot.active && (!oldest || slot.since < oldest->since)) oldest = &slot;
  const auto now = Clock::now();
  if (oldest) {
    s.in_op = 1;
    s.waited_s = std::chrono::duration<float>(now - oldest->since).count();
    std::snprintf(s.what, sizeof s.what, "%s", oldest->what.c_str());
  } else {
    s.outside_s = std::chrono::duration<float>(now - idle_since_).count();
  }
  return s;
}

void MpiWatchdog::send(int dst, int tag, std::string bytes) {
  sends_.emplace_back(MPI_REQUEST_NULL, std::move(bytes));
  std::string& b = sends_.back().second;
  if (MPI_Isend(b.data(), static_cast<int>(b.size()), MPI_BYTE, dst, tag, comm_, &sends_.back().first) != MPI_SUCCESS)
    sends_.pop_back();  // a peer that cannot be reached does not answer either
}

void MpiWatchdog::poll() {
  for (;;) {
    int arrived = 0;
    MPI_Status st;
    if (MPI_Test(&inbox_request_, &arrived, &st) != MPI_SUCCESS || !arrived) break;
    int count = 0;
    MPI_Get_count(&st, MPI_BYTE, &count);
    const std::string message(inbox_.data(), static_cast<size_t>(std::max(count, 0)));
    const int src = st.MPI_SOURCE, tag = st.MPI_TAG;
    MPI_Irecv(inbox_.data(), kInboxBytes, MPI_BYTE, MPI_ANY_SOURCE, MPI_ANY_TAG, comm_, &inbox_request_);
    if (tag == kProbe) {
      const Status s = status_now();
      send(src, kAnswer, std::string(reinterpret_cast<const char*>(&s), sizeof s));
    } else if (tag == kAnswer) {
      answers_[src] = message;
    } else if (tag == kVerdict && !message.empty()) {
      finish(message.substr(1), src, message[0] == 'R');
    }
  }
  drop_completed_sends();
}

void MpiWatchdog::drop_completed_sends() {
  for (auto it = sends_.begin(); it != sends_.end();) {
    int done = 0;
    if (MPI_Test(&it->first, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS || done)
      it = sends_.erase(it);
    else
      ++it;
  }
}

void MpiWatchdog::run() {
  MPI_Irecv(inbox_.data(), kInboxBytes, MPI_BYTE, MPI_ANY_SOURCE, MPI_ANY_TAG, comm_, &inbox_request_);
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(stop_mutex_);
      if (stop_) break;
    }
    poll();
    Slot late;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      const auto now = Clock::now();
      for (const Slot& slot : slots_)
        if (slot.active && std::chrono::duration<double>(now - slot.since).count() > timeout_s_) late = slot;
    }
    if (late.active) investigate();
    std::this_thread::sleep_for(kPollInterval);
  }
  MPI_Cancel(&inbox_request_);
  MPI_Wait(&inbox_request_, MPI_STATUS_IGNORE);
  for (auto& [request, bytes] : sends_) MPI_Request_free(&request);  // they complete (or not) on their own
  sends_.clear();
  MPI_Comm_free(&comm_);
}

// This rank has waited too long: ask every rank how it is, name the culprit, tell the others, end the job.
void MpiWatchdog::investigate() {
  answers_.clear();
  for (int r = 0; r < size_; ++r)
    if (r != rank_) send(r, kProbe, "?");
  const auto until = Clock::now() + std::chrono::duration<double>(kProbeSeconds);
  while (Clock::now() < until && static_cast<int>(answers_.size()) < size_ - 1) {
    poll();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::vector<int> silent;
  int outside = -1;  // the answering rank longest outside communication
  Status outside_status;
  std::vector<std::string> waits;
  for (int r = 0; r < size_; ++r) {
    if (r == rank_) continue;
    auto it = answers_.find(r);
    if (it == answers_.end() || it->second.size() != sizeof(Status)) {
      silent.push_back(r);
      continue;
    }
    Status s;
    std::memcpy(&s, it->second.data(), sizeof s);
    s.what[sizeof s.what - 1] = 0;
    if (!s.in_op && (outside < 0 || s.outside_s > outside_status.outside_s)) {
      outside = r;
      outside_status = s;
    }
    if (s.in_op && waits.size() < 4) waits.push_back(rank_name(r) + " waits in " + s.what);
  }
  std::string verdict;
  bool remote_silent = false;
  for (int r : silent)
    remote_silent = remote_silent || hosts_[static_cast<size_t>(r)] != hosts_[static_cast<size_t>(rank_)];
  if (!silent.empty()) {
    std::string names;
    const size_t shown = std::min<size_t>(silent.size(), 6);
    for (size_t i = 0; i < shown; ++i) names += (i ? ", " : "") + rank_name(silent[i]);
    if (silent.size() > shown) names += " and " + std::to_string(silent.size() - shown) + " more";
    verdict = "no answer from " + names + " (stopped, dead, or cut off by a link that is down)";
  } else if (outside >= 0) {
    verdict = rank_name(outside) + " answers but has been outside communication for " +
              seconds_text(outside_status.outside_s) + " s" + step_text(outside_status.step) +
              " (still computing, or stuck)";
  } else {
    verdict = "every rank answers and waits in communication, so the ranks are in different operations: ";
    for (size_t i = 0; i < waits.size(); ++i) verdict += (i ? "; " : "") + waits[i];
  }
  for (const auto& [r, answer] : answers_) send(r, kVerdict, (remote_silent ? "R" : "L") + verdict);
  finish(verdict, rank_, remote_silent);
}

// Prints this rank's line, lets the verdict reach the others for a moment (they print theirs), then ends the job.
// When a rank on another host is silent, its link may be down: the launcher then needs to find that out itself
// before anyone asks it to end the job (see kPartitionGrace), so the moment lasts longer.
void MpiWatchdog::finish(const std::string& verdict, int found_by, bool remote_silent) {
  const double grace_s = remote_silent ? kPartitionGraceSeconds : kGraceSeconds;
  const Status me = status_now();
  std::string line = rank_name(rank_);
  if (me.in_op)
    line += " waited " + seconds_text(me.waited_s) + " s in " + me.what;
  else
    line += " was outside communication";
  line += step_text(me.step) + ": " + verdict;
  if (found_by == rank_)
    line += "; deadline parallel.comm_timeout_s = " + seconds_text(timeout_s_) + " s";
  else
    line += "; found by " + rank_name(found_by);
  std::fprintf(stderr, "ringtrain: fatal: %s; ending the job\n", line.c_str());
  std::fflush(stderr);
  const auto until = Clock::now() + std::chrono::duration<double>(grace_s);
  while (Clock::now() < until) {  // keep the verdicts moving (no recursion: a second verdict is only stored)
    drop_completed_sends();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  abort_all_ranks(1);
}

}  // namespace rt
