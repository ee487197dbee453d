// A job in which rank 1 fails an internal check while rank 0 waits in a collective (for rank_failure_test).
#include <mpi.h>

#include "core/check.h"

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  RT_CHECK(rank != 1, "injected failure");
  MPI_Barrier(MPI_COMM_WORLD);  // rank 0 would wait here forever without the fatal handler's MPI_Abort
  MPI_Finalize();
  return 0;
}
