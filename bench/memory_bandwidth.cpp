// The measured read bandwidth of this host's memory, all threads at once: each thread sums its share of a buffer far
// larger than the caches (best of 5 passes), checked against the known sum. Decoding reads the whole KV cache and the
// weights once per token, so bench/decode_speed.sh prints its speed as a share of this.
//   memory_bandwidth --threads 2 --gib 2  -> "memory_bandwidth threads=2 gib=2 read_gbs=..."
#include <omp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <vector>

#include "core/timer.h"

int main(int argc, char** argv) {
  CLI::App app{"Read bandwidth of memory (GB/s), all threads"};
  int threads = 2;
  double gib = 2;
  app.add_option("--threads", threads, "OpenMP threads");
  app.add_option("--gib", gib, "buffer size in GiB (well beyond the last-level cache)");
  CLI11_PARSE(app, argc, argv);
  omp_set_num_threads(threads);
  const size_t n = static_cast<size_t>(gib * (1ull << 30) / sizeof(float));
  std::vector<float> buf(n);
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; ++i) buf[i] = static_cast<float>(i % 4);  // first touch by the reading thread
  const double expected = 1.5 * static_cast<double>(n);               // mean 1.5
  double best = 0;
  for (int pass = 0; pass < 5; ++pass) {
    rt::Timer t;
    double total = 0;
#pragma omp parallel for schedule(static) reduction(+ : total)
    for (size_t block = 0; block < n / 4096; ++block) {
      float s = 0;
#pragma omp simd reduction(+ : s)
      for (size_t i = block * 4096; i < (block + 1) * 4096; ++i) s += buf[i];
      total += s;
    }
    const double seconds = t.seconds();
    if (total != expected - 1.5 * static_cast<double>(n % 4096)) {
      std::fprintf(stderr, "memory_bandwidth: wrong sum %.1f (expected %.1f)\n", total, expected);
      return 1;
    }
    best = std::max(best, static_cast<double>(n / 4096 * 4096) * sizeof(float) / seconds / 1e9);
  }
  std::printf("memory_bandwidth threads=%d gib=%g read_gbs=%.1f\n", threads, gib, best);
  return 0;
}
