// Benchmark: the gradient all-reduce (Communicator::all_reduce_sum of f32) over the job's ranks, as nccl-tests report
// it: time, algorithm bandwidth (bytes / time) and bus bandwidth (x 2(n-1)/n, what each link carried). Checks the sums
// before it prints a speed.
//   mpirun -np 2 allreduce_bench --sizes 1,4,16,64      (MiB of f32)
#include <mpi.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <sstream>
#include <vector>

#include "core/backend.h"
#include "core/timer.h"
#include "parallel/communicator.h"

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  CLI::App app{"all_reduce_sum bandwidth over the job's ranks"};
  std::string sizes_text = "1,4,16";
  int64_t reps = 5;
  app.add_option("--sizes", sizes_text, "message sizes in MiB of f32, comma-separated");
  app.add_option("--reps", reps, "timed repetitions per size (after one warm-up); the median is printed");
  CLI11_PARSE(app, argc, argv);
  std::vector<double> sizes_mib;
  std::stringstream list(sizes_text);
  for (std::string item; std::getline(list, item, ',');) sizes_mib.push_back(std::stod(item));

  int code = 0;
  {
    std::unique_ptr<rt::Communicator> world = rt::mpi_world();
    const int rank = world->rank(), n = world->size();
    rt::Backend& be = rt::cpu_backend();
    const std::vector<std::string> hosts = world->host_names();
    int nodes = 0;
    for (size_t r = 0; r < hosts.size(); ++r)
      nodes += std::find(hosts.begin(), hosts.begin() + r, hosts[r]) == hosts.begin() + r;
    if (rank == 0) {
      std::printf("all_reduce_sum: %d ranks on %d nodes (%s ...)\n", n, nodes, hosts[0].c_str());
      std::printf("| MiB | ms | algbw GB/s | busbw GB/s |\n|---|---|---|---|\n");
    }
    for (double mib : sizes_mib) {
      const int64_t count = static_cast<int64_t>(mib * (1 << 20) / 4);
      rt::Tensor t = be.alloc({count});
      // Rank r holds r + 1 + (i % 7): the sum is n(n+1)/2 + n (i % 7), exact in f32 for these magnitudes.
      auto fill = [&] {
        for (int64_t i = 0; i < count; ++i) t.f32()[i] = static_cast<float>(rank + 1 + i % 7);
      };
      std::vector<double> seconds;
      bool right = true;
      for (int64_t rep = 0; rep <= reps; ++rep) {
        fill();
        world->barrier();
        rt::Timer timer;
        world->all_reduce_sum(t);
        if (rep > 0) seconds.push_back(timer.seconds());
        for (int64_t i = 0; i < count && right; ++i)
          right = t.f32()[i] == static_cast<float>(n * (n + 1) / 2 + n * (i % 7));
      }
      double wrong = right ? 0 : 1;
      world->all_reduce_sum(&wrong, 1);
      if (wrong > 0) {
        if (rank == 0) std::printf("FAIL: all_reduce_sum of %.0f MiB gave a wrong sum on %.0f ranks\n", mib, wrong);
        code = 1;
        break;
      }
      std::sort(seconds.begin(), seconds.end());
      const double s = seconds[seconds.size() / 2], bytes = static_cast<double>(count) * 4;
      if (rank == 0)
        std::printf("| %g | %.2f | %.2f | %.2f |\n", mib, 1e3 * s, bytes / s / 1e9, bytes / s / 1e9 * 2 * (n - 1) / n);
    }
    if (rank == 0 && code == 0) std::printf("PASS: every sum checked\n");
  }
  MPI_Finalize();
  return code;
}
