// GoogleTest main for suites that need MPI: initialises MPI, lets only rank 0 print, combines failures.
// --mpi-thread=single|funneled|serialized|multiple (default multiple) picks the thread level MPI is initialised with:
// below multiple, the MPI communicator exchanges by MPI_Isend/Irecv instead of its exchange thread.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdio>
#include <string>

namespace {

struct ThreadLevel {
  const char* name;
  int level;
};
constexpr ThreadLevel kThreadLevels[] = {{"single", MPI_THREAD_SINGLE},
                                         {"funneled", MPI_THREAD_FUNNELED},
                                         {"serialized", MPI_THREAD_SERIALIZED},
                                         {"multiple", MPI_THREAD_MULTIPLE}};

// The level --mpi-thread names (MPI_THREAD_MULTIPLE without the flag: the communicators run their exchanges on a
// thread); nullptr, after saying so, for a name that is not one.
const ThreadLevel* requested_level(int argc, char** argv) {
  const std::string flag = "--mpi-thread=";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind(flag, 0) != 0) continue;
    for (const ThreadLevel& t : kThreadLevels)
      if (arg.substr(flag.size()) == t.name) return &t;
    std::fprintf(stderr, "error: %s is not a thread level; valid: single, funneled, serialized, multiple\n", arg.c_str());
    return nullptr;
  }
  return &kThreadLevels[3];
}

}  // namespace

int main(int argc, char** argv) {
  const ThreadLevel* requested = requested_level(argc, argv);
  if (!requested) return 2;
  int provided = 0;
  MPI_Init_thread(&argc, &argv, requested->level, &provided);
  ::testing::InitGoogleTest(&argc, argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  // A level below multiple is asked for to test the code that runs without MPI_THREAD_MULTIPLE: MPI must not give more.
  int failed = requested->level < MPI_THREAD_MULTIPLE && provided >= MPI_THREAD_MULTIPLE ? 1 : 0;
  if (failed && rank == 0)
    std::fprintf(stderr, "error: --mpi-thread=%s, but MPI provides MPI_THREAD_MULTIPLE, so the code for lower levels "
                 "would not run\n", requested->name);
  if (rank != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  if (!failed && RUN_ALL_TESTS() != 0) failed = 1;
  int any_failed = 0;
  MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Finalize();
  return any_failed;
}
