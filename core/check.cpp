// The fatal handler: one message, then MPI_Abort so that no rank is left waiting in a collective.
#include "core/check.h"

#include <mpi.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

namespace rt {
namespace {

int world_rank_or_zero() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (!initialized || finalized) return 0;
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

int world_size_or_one() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (!initialized || finalized) return 1;
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return size;
}

constexpr int kAbortBackstopSeconds = 5;

[[noreturn]] void end_job(int code) {
  std::fflush(stdout);
  std::fflush(stderr);
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized && world_size_or_one() > 1) {
    // MPI_Abort asks the launcher to end every rank; when the launcher cannot be reached (a link that is down), it
    // may never return, so this process ends itself a few seconds later.
    std::thread([code] {
      std::this_thread::sleep_for(std::chrono::seconds(kAbortBackstopSeconds));
      std::_Exit(code);
    }).detach();
    MPI_Abort(MPI_COMM_WORLD, code);
  }
  std::_Exit(code);
}

}  // namespace

void fatal(const std::string& what, const char* file, int line) {
  char host[256] = "?";
  gethostname(host, sizeof host - 1);
  std::fprintf(stderr, "ringtrain: fatal: %s (%s:%d, rank %d on %s)\n", what.c_str(), file, line,
               world_rank_or_zero(), host);
  end_job(1);
}

void abort_all_ranks(int code) { end_job(code); }

void exit_user_error(const std::string& message) {
  // Most user mistakes are seen by every rank alike: rank 0 reports and ends the job, and the other ranks
  // wait a moment so that the message appears once. A mistake only one rank sees is reported by that rank.
  const int rank = world_rank_or_zero();
  if (rank != 0) usleep(1000 * 1000);
  std::fprintf(stderr, "ringtrain: error: %s%s\n", rank != 0 ? ("(rank " + std::to_string(rank) + ") ").c_str() : "",
               message.c_str());
  end_job(2);
}

std::string format_mpi_error(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) return "MPI error " + std::to_string(code);
  return std::string(text, len);
}

}  // namespace rt
