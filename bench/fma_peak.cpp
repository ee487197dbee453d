// The fp32 FMA peak of this host's cores, measured: 24 independent 16-lane FMA chains per thread, all threads at
// once. Benchmarks print it beside the project's quoted peak, because the machines that run them differ.
//   fma_peak --threads 2          -> "fma_peak threads=2 gflops=232.4 per_thread=116.2 cpu=AMD EPYC (family 25 model 17)"
#include <omp.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "core/timer.h"

namespace {

typedef float V16 __attribute__((vector_size(64)));  // one zmm register with AVX-512, two ymm without
constexpr int kChains = 24;                           // > FMA latency x FMA pipes on any current x86 core

// Runs `iters` rounds of kChains FMAs on 16 lanes; returns a value that depends on every chain (kept live).
__attribute__((noinline)) float fma_loop(long iters, float seed) {
  V16 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = V16{} + seed * static_cast<float>(i);
  const V16 x = V16{} + 0.9999999f, y = V16{} + 1e-7f;
  for (long t = 0; t < iters; ++t) {
#pragma GCC unroll 24
    for (int i = 0; i < kChains; ++i) acc[i] = acc[i] * x + y;
  }
  float s = 0;
  for (int i = 0; i < kChains; ++i) s += acc[i][0] + acc[i][15];
  return s;
}

std::string cpu_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line, name = "unknown", family, model;
  while (std::getline(in, line)) {
    auto value = [&] { return line.substr(line.find(':') + 2); };
    if (line.rfind("model name", 0) == 0 && name == "unknown") name = value();
    if (line.rfind("cpu family", 0) == 0 && family.empty()) family = value();
    if (line.rfind("model\t", 0) == 0 && model.empty()) model = value();
  }
  return name + " (family " + family + " model " + model + ")";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ringtrain: measured fp32 FMA peak of this host"};
  int threads = 2;
  app.add_option("--threads", threads, "threads running the loop at once")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  const long iters = 20'000'000;
  std::vector<double> seconds(static_cast<size_t>(threads));
  float sink = 0;
#pragma omp parallel num_threads(threads) reduction(+ : sink)
  {
    sink += fma_loop(iters / 20, 1.f);  // warm-up: clocks up, pages in
    rt::Timer timer;
    sink += fma_loop(iters, 1.f);
    seconds[static_cast<size_t>(omp_get_thread_num())] = timer.seconds();
  }
  double total = 0;
  for (double s : seconds) total += 2.0 * 16 * kChains * static_cast<double>(iters) / s / 1e9;
  if (!(sink == sink)) return 1;  // NaN: the loop went wrong
  std::printf("fma_peak threads=%d gflops=%.1f per_thread=%.1f cpu=%s\n", threads, total, total / threads,
              cpu_name().c_str());
  return 0;
}
