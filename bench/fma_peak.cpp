// The measured compute peaks of this host's cores, all threads at once: fp32 FMA (24 independent 16-lane FMA chains
// per thread), and with --precision bf16 the bf16 dot-product rates: AVX512-BF16 vdpbf16ps (24 chains of 32 products
// into 16 lanes) and AMX-BF16 tdpbf16ps (4 tile accumulators of 16x16, 16x16x32 per instruction). Benchmarks print
// them beside their GFLOP/s, because the machines that run them differ.
//   fma_peak --threads 2                  -> "fma_peak threads=2 gflops=232.4 per_thread=116.2 cpu=..."
//   fma_peak --threads 2 --precision bf16 -> "bf16_peak threads=2 dpbf16ps_gflops=... amx_gflops=... cpu=..."
#include <omp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "core/cpu/amx.h"
#include "core/cpu/cpu_features.h"
#include "core/timer.h"

#if defined(__AVX512BF16__) || defined(__AMX_BF16__)
#include <immintrin.h>
#endif

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
constexpr double kFmaFlops = 2.0 * 16 * kChains;  // per round

#if defined(__AVX512BF16__)
// kChains vdpbf16ps per round: each 16 lanes x 2 products, accumulated in fp32.
__attribute__((noinline)) float dpbf16_loop(long iters, float seed) {
  __m512 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(seed * static_cast<float>(i));
  const __m512bh x = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-3f), _mm512_set1_ps(1e-3f));
  const __m512bh y = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-4f), _mm512_set1_ps(1e-4f));
  for (long t = 0; t < iters; ++t) {
#pragma GCC unroll 24
    for (int i = 0; i < kChains; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], x, y);
    __asm__ volatile("" : "+v"(acc[0]), "+v"(acc[1]), "+v"(acc[2]));  // keep the loop from being folded
  }
  float s = 0;
  alignas(64) float lanes[16];
  for (int i = 0; i < kChains; ++i) {
    _mm512_store_ps(lanes, acc[i]);
    s += lanes[0] + lanes[15];
  }
  return s;
}
constexpr double kDpbf16Flops = 2.0 * 32 * kChains;
#endif

#if defined(__AMX_BF16__)
// Per round 4 tdpbf16ps: C0..C3 (16x16 fp32) += A (16x32 bf16) B (32x16 bf16, pair-packed), 16384 flops each.
__attribute__((noinline)) float amx_loop(long iters, float seed) {
  const rt::AmxTileConfig cfg;
  _tile_loadconfig(&cfg);
  alignas(64) uint16_t ab[16 * 32];
  for (int i = 0; i < 16 * 32; ++i) ab[i] = 0x3a83;  // ~1e-3 in bf16
  alignas(64) float c[16 * 16];
  for (int i = 0; i < 16 * 16; ++i) c[i] = seed;
  _tile_loadd(0, c, 64);  // tile numbers are immediates
  _tile_loadd(1, c, 64);
  _tile_loadd(2, c, 64);
  _tile_loadd(3, c, 64);
  _tile_loadd(4, ab, 64);
  _tile_loadd(5, ab, 64);
  _tile_loadd(6, ab, 64);
  _tile_loadd(7, ab, 64);
  for (long t = 0; t < iters; ++t) {
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  float s = 0;
  _tile_stored(0, c, 64);
  s += c[0];
  _tile_stored(3, c, 64);
  s += c[255];
  _tile_release();
  return s;
}
constexpr double kAmxFlops = 4.0 * 2 * 16 * 16 * 32;
#endif

// GFLOP/s of `loop` (flops per round) run by every thread at once after a warm-up; -1 if its result is NaN.
double measure_once(int threads, long iters, double flops_per_round, const std::function<float(long, float)>& loop) {
  std::vector<double> seconds(static_cast<size_t>(threads));
  float sink = 0;
#pragma omp parallel num_threads(threads) reduction(+ : sink)
  {
    sink += loop(iters / 20, 1.f);  // warm-up: clocks up, pages in
    rt::Timer timer;
    sink += loop(iters, 1.f);
    seconds[static_cast<size_t>(omp_get_thread_num())] = timer.seconds();
  }
  if (!(sink == sink)) return -1;  // NaN: the loop went wrong
  double total = 0;
  for (double s : seconds) total += flops_per_round * static_cast<double>(iters) / s / 1e9;
  return total;
}

// The best of 3 (the host is shared: a slower run is another tenant, not the core).
double measure(int threads, long iters, double flops_per_round, const std::function<float(long, float)>& loop) {
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    const double g = measure_once(threads, iters, flops_per_round, loop);
    if (g < 0) return g;
    best = std::max(best, g);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ringtrain: measured compute peak of this host (fp32 FMA, or the bf16 dot products)"};
  int threads = 2;
  std::string precision = "fp32";
  app.add_option("--threads", threads, "threads running the loop at once")->check(CLI::PositiveNumber);
  app.add_option("--precision", precision, "fp32 (FMA) | bf16 (vdpbf16ps and AMX tdpbf16ps where present)")
      ->check(CLI::IsMember({"fp32", "bf16"}));
  CLI11_PARSE(app, argc, argv);
  if (precision == "fp32") {
    const double g = measure(threads, 20'000'000, kFmaFlops, fma_loop);
    if (g < 0) return 1;
    std::printf("fma_peak threads=%d gflops=%.1f per_thread=%.1f cpu=%s\n", threads, g, g / threads,
                rt::cpu_model_name().c_str());
    return 0;
  }
  [[maybe_unused]] const rt::CpuFeatures& f = rt::cpu_features();
  std::string dp = "n/a", amx = "n/a";
  [[maybe_unused]] char buf[32];
#if defined(__AVX512BF16__)
  if (f.avx512_bf16) {
    const double g = measure(threads, 10'000'000, kDpbf16Flops, dpbf16_loop);
    if (g < 0) return 1;
    std::snprintf(buf, sizeof buf, "%.1f", g);
    dp = buf;
  }
#endif
#if defined(__AMX_BF16__)
  if (f.amx_bf16 && rt::amx_request_permission()) {
    const double g = measure(threads, 2'000'000, kAmxFlops, amx_loop);
    if (g < 0) return 1;
    std::snprintf(buf, sizeof buf, "%.1f", g);
    amx = buf;
  }
#endif
  std::printf("bf16_peak threads=%d dpbf16ps_gflops=%s amx_gflops=%s cpu=%s%s\n", threads, dp.c_str(), amx.c_str(),
              rt::cpu_model_name().c_str(),
              rt::cpu_bf16_description().empty() ? " (no bf16 instructions on this CPU, or not in this build)" : "");
  return 0;
}
