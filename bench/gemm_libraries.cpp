// Benchmark: fp32 GEMM libraries side by side on the model's GEMM shapes (docs/gemm.md has the results).
//   gemm_libraries --threads 2 --rounds 3 --reps 30        (bench/gemm_libraries.sh runs it as the doc reports)
// Libraries: oneDNN dnnl_sgemm (linked; the project's GEMM), OpenBLAS and BLIS (dlopen'ed with RTLD_LOCAL, since both
// export cblas_sgemm; a library that is not installed prints n/a), libxsmm (Debian's static libs, only when CMake found
// them). OpenBLAS picks its kernels from OPENBLAS_CORETYPE when it loads and BLIS from BLIS_ARCH_TYPE in bli_init, so
// each requested variant loads its own copy of the .so.
// Every result is checked against a double-precision reference (sampled rows) and against oneDNN's C (all entries)
// before a speed is printed; a mismatch prints FAIL and exits 1. The machine is shared: calls during which another
// process preempted one of our threads are set aside, and cells where most calls were are measured again.
#include <dlfcn.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cfloat>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <functional>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#if defined(RT_HAVE_LIBXSMM) && __has_include(<libxsmm.h>)
#include <libxsmm.h>
#define RT_BENCH_LIBXSMM 1
#else
#define RT_BENCH_LIBXSMM 0
#endif

namespace {

// Row-major C(M,N) = op(A) @ op(B), op(A) (M,K), op(B) (K,N); lda/ldb/ldc are row strides of the stored matrices.
struct Shape {
  std::string name;
  bool ta, tb;
  int64_t M, N, K, lda, ldb, ldc;
  double flops() const { return 2.0 * static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K); }
  int64_t a_rows() const { return ta ? K : M; }
  int64_t b_rows() const { return tb ? N : K; }
  std::string dims() const {
    std::ostringstream s;
    s << M << "x" << N << "x" << K << " " << (ta ? 'T' : 'N') << (tb ? 'T' : 'N');
    return s.str();
  }
};

// The GEMMs of one layer of the reference model (hidden 256, SwiGLU 1024, head dim 64, 4 heads) at T tokens.
std::vector<Shape> model_shapes(int64_t T) {
  const int64_t H = 256, F = 1024, D = 64;
  const std::string t = "T" + std::to_string(T) + " ";
  return {
      {t + "fwd x@W^T q/k/v/o", false, true, T, H, H, H, H, H},
      {t + "fwd x@W^T gate/up", false, true, T, F, H, H, H, F},
      {t + "fwd h@W^T down", false, true, T, H, F, F, F, H},
      {t + "bwd dX=dY@W q/k/v/o", false, false, T, H, H, H, H, H},
      {t + "bwd dX=dY@W gate/up", false, false, T, H, F, F, H, H},
      {t + "bwd dX=dY@W down", false, false, T, F, H, H, F, F},
      {t + "bwd dW=dY^T@X q/k/v/o", true, false, H, H, T, H, H, H},
      {t + "bwd dW=dY^T@X gate/up", true, false, F, H, T, F, H, H},
      {t + "bwd dW=dY^T@X down", true, false, H, F, T, H, F, F},
      // One head of attention over the whole sequence: Q, K, V, O are column slices (ld = hidden) of (T, hidden).
      {t + "attn S=Q@K^T (1 head)", false, true, T, T, D, H, H, T},
      {t + "attn O=P@V (1 head)", false, false, T, D, T, T, H, H},
  };
}

using GemmFn = std::function<void(const Shape&, const float* A, const float* B, float* C)>;

struct Library {
  std::string name;  // column header
  std::string note;  // what was loaded, for the header
  GemmFn run;        // empty: not available (prints n/a)
  std::function<bool(const Shape&)> supports = [](const Shape&) { return true; };
};

// ---- oneDNN (linked) ----
std::string isa_name(dnnl_cpu_isa_t isa) {
  switch (isa) {
    case dnnl_cpu_isa_avx2:
      return "avx2";
    case dnnl_cpu_isa_avx512_core:
      return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni:
      return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16:
      return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx:
      return "avx512_core_amx";
    default:
      return std::to_string(static_cast<int>(isa));
  }
}

Library make_onednn() {
  Library lib;
  lib.name = "oneDNN";
  const dnnl_version_t* v = dnnl_version();
  lib.note = "dnnl_sgemm " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
             std::to_string(v->patch) +
             " cpu_runtime=" + (v->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : std::to_string(v->cpu_runtime)) +
             " isa=" + isa_name(dnnl_get_effective_cpu_isa());
  lib.run = [](const Shape& s, const float* A, const float* B, float* C) {
    const dnnl_status_t st =
        dnnl_sgemm(s.ta ? 'T' : 'N', s.tb ? 'T' : 'N', s.M, s.N, s.K, 1.f, A, s.lda, B, s.ldb, 0.f, C, s.ldc);
    if (st != dnnl_success) {
      std::fprintf(stderr, "FAIL: dnnl_sgemm returned status %d on %s\n", static_cast<int>(st), s.name.c_str());
      std::exit(1);
    }
  };
  return lib;
}

// ---- CBLAS through dlopen (OpenBLAS, BLIS) ----
enum CblasOrder { kRowMajor = 101 };
enum CblasTranspose { kNoTrans = 111, kTrans = 112 };
using cblas_sgemm_t = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int, float, float*,
                               int);

template <class F>
F sym(void* h, const char* name) {
  return reinterpret_cast<F>(dlsym(h, name));
}

GemmFn cblas_runner(cblas_sgemm_t f) {
  return [f](const Shape& s, const float* A, const float* B, float* C) {
    f(kRowMajor, s.ta ? kTrans : kNoTrans, s.tb ? kTrans : kNoTrans, static_cast<int>(s.M), static_cast<int>(s.N),
      static_cast<int>(s.K), 1.f, A, static_cast<int>(s.lda), B, static_cast<int>(s.ldb), 0.f, C,
      static_cast<int>(s.ldc));
  };
}

// dlopen()s `path` with the environment variable `var` set to `value` ("auto": unset) while the library initialises,
// then restores the variable. OpenBLAS picks its kernels in its load-time constructor (OPENBLAS_CORETYPE) and BLIS in
// bli_init (BLIS_ARCH_TYPE), so every variant after the first loads a private copy of the .so: a different path is a
// different object for the dynamic loader, with its own kernel choice.
void* load_with_env(const std::string& path, const char* var, const std::string& value, int instance,
                    const std::function<void(void*)>& init) {
  const char* old = std::getenv(var);
  const std::optional<std::string> saved = old ? std::optional<std::string>(old) : std::nullopt;
  if (value == "auto")
    unsetenv(var);
  else
    setenv(var, value.c_str(), 1);
  std::string load_path = path;
  std::filesystem::path copy;
  if (instance > 0 && std::filesystem::exists(path)) {
    copy = std::filesystem::temp_directory_path() /
           ("gemm_libraries_" + std::to_string(getpid()) + "_" + std::filesystem::path(path).filename().string() + "." +
            std::to_string(instance));
    std::error_code ec;
    std::filesystem::copy_file(path, copy, std::filesystem::copy_options::overwrite_existing, ec);
    if (!ec) load_path = copy.string();
  }
  void* h = dlopen(load_path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!copy.empty()) std::filesystem::remove(copy);  // the mapping stays valid
  if (h && init) init(h);
  if (saved)
    setenv(var, saved->c_str(), 1);
  else
    unsetenv(var);
  return h;
}

// One OpenBLAS column per OPENBLAS_CORETYPE value ("auto": unset, OpenBLAS detects the CPU).
Library make_openblas(const std::string& path, const std::string& coretype, int threads, int instance) {
  Library lib;
  lib.name = "OpenBLAS[" + coretype + "]";
  void* h = load_with_env(path, "OPENBLAS_CORETYPE", coretype, instance, {});
  if (!h) {
    lib.note = std::string("not loaded: ") + dlerror();
    return lib;
  }
  auto gemm = sym<cblas_sgemm_t>(h, "cblas_sgemm");
  auto set_threads = sym<void (*)(int)>(h, "openblas_set_num_threads");
  auto get_threads = sym<int (*)()>(h, "openblas_get_num_threads");
  auto corename = sym<char* (*)()>(h, "openblas_get_corename");
  auto config = sym<char* (*)()>(h, "openblas_get_config");
  if (!gemm) {
    lib.note = "no cblas_sgemm in " + path;
    return lib;
  }
  if (set_threads) set_threads(threads);
  if (coretype == "auto" && corename) lib.name = "OpenBLAS[auto=" + std::string(corename()) + "]";
  lib.note = std::string(config ? config() : "OpenBLAS") + "; core=" + (corename ? corename() : "?") +
             " threads=" + (get_threads ? std::to_string(get_threads()) : "?");
  lib.run = cblas_runner(gemm);
  return lib;
}

// One BLIS column per sub-configuration ("auto": BLIS detects the CPU; otherwise a name such as skx, zen3, haswell,
// passed to BLIS as BLIS_ARCH_TYPE=<its id>).
Library make_blis(const std::string& path, const std::string& arch, int threads, int instance) {
  Library lib;
  lib.name = "BLIS[" + arch + "]";
  std::string id = arch;
  if (arch != "auto") {  // BLIS 0.9 takes the numeric arch_t id; bli_arch_string maps ids to names
    void* probe = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    auto arch_name = probe ? sym<const char* (*)(int)>(probe, "bli_arch_string") : nullptr;
    for (int i = 0; arch_name && i < 64; ++i) {
      const char* n = arch_name(i);
      if (!n) break;
      if (arch == n) {
        id = std::to_string(i);
        break;
      }
      if (std::string(n) == "generic") break;  // the last id
    }
    if (id == arch) {
      lib.note = "no BLIS sub-configuration named " + arch;
      return lib;
    }
    // bli_init aborts the process when the requested sub-configuration is not compiled in, and its kernels may not
    // run on this CPU (SIGILL): try both in a child first.
    std::fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) {
      std::freopen("/dev/null", "w", stdout);
      std::freopen("/dev/null", "w", stderr);
      void* h = load_with_env(path, "BLIS_ARCH_TYPE", id, instance, [](void* handle) {
        if (auto init = sym<void (*)()>(handle, "bli_init")) init();
      });
      auto gemm = h ? sym<cblas_sgemm_t>(h, "cblas_sgemm") : nullptr;
      if (!gemm) _exit(1);
      std::vector<float> a(64 * 64, 1.f), c(64 * 64, 0.f);  // and its kernels must run on this CPU (no SIGILL)
      gemm(kRowMajor, kNoTrans, kNoTrans, 64, 64, 64, 1.f, a.data(), 64, a.data(), 64, 0.f, c.data(), 64);
      _exit(c[0] == 64.f && c[64 * 64 - 1] == 64.f ? 0 : 1);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      lib.note = "sub-configuration " + arch + " fails with BLIS_ARCH_TYPE=" + id +
                 " (not in this BLIS build, or its kernels do not run on this CPU)";
      return lib;
    }
  }
  // bli_init reads BLIS_ARCH_TYPE (and aborts when that sub-configuration is not compiled in).
  void* h = load_with_env(path, "BLIS_ARCH_TYPE", id, instance, [](void* handle) {
    if (auto init = sym<void (*)()>(handle, "bli_init")) init();
  });
  if (!h) {
    lib.note = std::string("not loaded: ") + dlerror();
    return lib;
  }
  auto gemm = sym<cblas_sgemm_t>(h, "cblas_sgemm");
  if (!gemm) {
    lib.note = "no cblas_sgemm in " + path + " (BLIS built without CBLAS)";
    return lib;
  }
  // BLIS is single-threaded unless BLIS_NUM_THREADS/OMP_NUM_THREADS or this call says otherwise.
  auto set_threads = sym<void (*)(int64_t)>(h, "bli_thread_set_num_threads");
  auto get_threads = sym<int64_t (*)()>(h, "bli_thread_get_num_threads");
  auto arch_id = sym<int (*)()>(h, "bli_arch_query_id");
  auto arch_name = sym<const char* (*)(int)>(h, "bli_arch_string");
  auto openmp = sym<int (*)()>(h, "bli_info_get_enable_openmp");
  auto version = sym<const char* (*)()>(h, "bli_info_get_version_str");
  if (set_threads) set_threads(threads);
  const std::string chosen = arch_id && arch_name ? arch_name(arch_id()) : "?";
  if (arch == "auto") lib.name = "BLIS[auto=" + chosen + "]";
  lib.note = std::string("BLIS ") + (version ? version() : "?") + "; sub-config=" + chosen +
             (arch == "auto" ? " (detected)" : " (BLIS_ARCH_TYPE=" + id + ")") +
             " openmp=" + (openmp ? std::to_string(openmp()) : "?") +
             " threads=" + (get_threads ? std::to_string(get_threads()) : "?");
  lib.run = cblas_runner(gemm);
  return lib;
}

// ---- libxsmm (static libs; column-major API: row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T) ----
#if RT_BENCH_LIBXSMM
struct XsmmArgs {
  char ta, tb;
  libxsmm_blasint m, n, k, lda, ldb, ldc;
};
XsmmArgs xsmm_args(const Shape& s) {
  auto i = [](int64_t v) { return static_cast<libxsmm_blasint>(v); };
  return {s.tb ? 'T' : 'N', s.ta ? 'T' : 'N', i(s.N), i(s.M), i(s.K), i(s.ldb), i(s.lda), i(s.ldc)};
}
Library make_libxsmm() {
  Library lib;
  libxsmm_init();
  lib.name = std::string("libxsmm[") + libxsmm_get_target_arch() + "]";
  lib.note = "libxsmm " LIBXSMM_VERSION " libxsmm_sgemm_omp (tiled JIT kernels); target=" +
             std::string(libxsmm_get_target_arch());
  // libxsmm_sgemm_omp falls back to the BLAS sgemm_ when its tiling does not divide the shape; the binary links
  // libxsmmnoblas (no BLAS), so such shapes are reported as n/a rather than timed.
  lib.supports = [](const Shape& s) {
    const XsmmArgs x = xsmm_args(s);
    const float alpha = 1.f, beta = 0.f;
    libxsmm_gemm_blob blob;
    return libxsmm_gemm_handle_init(&blob, LIBXSMM_GEMM_PRECISION_F32, LIBXSMM_GEMM_PRECISION_F32, &x.ta, &x.tb, &x.m,
                                    &x.n, &x.k, &x.lda, &x.ldb, &x.ldc, &alpha, &beta, LIBXSMM_GEMM_HANDLE_FLAG_AUTO,
                                    omp_get_max_threads()) != nullptr;
  };
  lib.run = [](const Shape& s, const float* A, const float* B, float* C) {
    const XsmmArgs x = xsmm_args(s);
    const float alpha = 1.f, beta = 0.f;
    libxsmm_sgemm_omp(&x.ta, &x.tb, &x.m, &x.n, &x.k, &alpha, B, &x.lda, A, &x.ldb, &beta, C, &x.ldc);
  };
  return lib;
}
#endif

// ---- checks ----
struct Data {
  std::vector<float> A, B;
  std::vector<int64_t> rows;  // sampled rows of C for the double-precision reference
  std::vector<double> ref;    // ref[r * N + j] = C[rows[r]][j]
  double ref_max = 0;         // max |C| over the sampled rows
  std::vector<float> onednn;  // oneDNN's full C
  double onednn_max = 0;
};

float at_a(const Shape& s, const std::vector<float>& A, int64_t i, int64_t k) {
  return s.ta ? A[k * s.lda + i] : A[i * s.lda + k];
}
float at_b(const Shape& s, const std::vector<float>& B, int64_t k, int64_t j) {
  return s.tb ? B[j * s.ldb + k] : B[k * s.ldb + j];
}

Data make_data(const Shape& s, uint32_t seed, int64_t sample_rows) {
  Data d;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  d.A.resize(static_cast<size_t>(s.a_rows() * s.lda));
  d.B.resize(static_cast<size_t>(s.b_rows() * s.ldb));
  for (float& x : d.A) x = u(rng);
  for (float& x : d.B) x = u(rng);
  std::uniform_int_distribution<int64_t> row(0, s.M - 1);
  d.rows = {0, s.M - 1};
  while (static_cast<int64_t>(d.rows.size()) < std::min(sample_rows, s.M)) d.rows.push_back(row(rng));
  d.ref.assign(d.rows.size() * static_cast<size_t>(s.N), 0.0);
  for (size_t r = 0; r < d.rows.size(); ++r) {
    for (int64_t j = 0; j < s.N; ++j) {
      double acc = 0;
      for (int64_t k = 0; k < s.K; ++k) acc += static_cast<double>(at_a(s, d.A, d.rows[r], k)) * at_b(s, d.B, k, j);
      d.ref[r * static_cast<size_t>(s.N) + static_cast<size_t>(j)] = acc;
      d.ref_max = std::max(d.ref_max, std::abs(acc));
    }
  }
  return d;
}

// fp32 accumulation over K terms: error grows like sqrt(K) * eps relative to the largest |C|.
double tolerance(const Shape& s) { return 4.0 * std::sqrt(static_cast<double>(s.K)) * FLT_EPSILON; }

// Largest error of C against the double reference (sampled rows), relative to max|C|.
double err_vs_ref(const Shape& s, const Data& d, const std::vector<float>& C) {
  double e = 0;
  for (size_t r = 0; r < d.rows.size(); ++r)
    for (int64_t j = 0; j < s.N; ++j) {
      const double c = C[static_cast<size_t>(d.rows[r] * s.ldc + j)];
      const double x = d.ref[r * static_cast<size_t>(s.N) + static_cast<size_t>(j)];
      e = std::max(e, std::isfinite(c) ? std::abs(c - x) : INFINITY);
    }
  return e / std::max(d.ref_max, 1e-30);
}

// Largest difference to oneDNN's C over every entry, relative to max|C|.
double err_vs_onednn(const Shape& s, const Data& d, const std::vector<float>& C) {
  double e = 0;
  for (int64_t i = 0; i < s.M; ++i)
    for (int64_t j = 0; j < s.N; ++j) {
      const size_t p = static_cast<size_t>(i * s.ldc + j);
      e = std::max(e, std::isfinite(C[p]) ? std::abs(static_cast<double>(C[p]) - d.onednn[p]) : INFINITY);
    }
  return e / std::max(d.onednn_max, 1e-30);
}

// Involuntary context switches of this process so far (all threads): other processes took a core from us.
long preemptions() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<long>(u.ru_nivcsw);
}

struct Timing {
  double seconds = 0;  // median (or fastest) of the calls that no other process interrupted
  int clean = 0;       // calls without an involuntary context switch of any of our threads
  int calls = 0;
};

// One attempt at a cell: warm-up, then `reps` timed calls (fewer when a call is slow, at least 5). The machine is
// shared, and a 2-thread call during which another process takes one of the cores waits a whole time slice at the
// team's barrier, so calls with an involuntary context switch are set aside; the result is the median (or with
// `fastest` the fastest) of the others, or of all calls when none was clean.
Timing time_cell(const Library& lib, const Shape& s, const Data& d, std::vector<float>& C, int reps, double budget_s,
                 bool fastest) {
  using clock = std::chrono::steady_clock;
  lib.run(s, d.A.data(), d.B.data(), C.data());
  const auto t0 = clock::now();
  lib.run(s, d.A.data(), d.B.data(), C.data());
  const double first = std::chrono::duration<double>(clock::now() - t0).count();
  const int n = std::clamp(static_cast<int>(budget_s / std::max(first, 1e-9)), std::min(5, reps), reps);
  std::vector<double> clean, all;
  for (int r = 0; r < n; ++r) {
    const long p = preemptions();
    const auto a = clock::now();
    lib.run(s, d.A.data(), d.B.data(), C.data());
    const double t = std::chrono::duration<double>(clock::now() - a).count();
    all.push_back(t);
    if (preemptions() == p) clean.push_back(t);
  }
  Timing out;
  out.clean = static_cast<int>(clean.size());
  out.calls = n;
  std::vector<double>& t = clean.empty() ? all : clean;
  if (fastest) {
    out.seconds = *std::min_element(t.begin(), t.end());
  } else {
    std::nth_element(t.begin(), t.begin() + static_cast<std::ptrdiff_t>(t.size() / 2), t.end());
    out.seconds = t[t.size() / 2];
  }
  return out;
}

std::string loadavg() {
  std::FILE* f = std::fopen("/proc/loadavg", "r");
  if (!f) return "?";
  char buf[128] = {};
  const size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  std::string s(buf, n);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ringtrain GEMM library comparison (oneDNN, OpenBLAS, BLIS, libxsmm)"};
  int threads = 2, reps = 30, rounds = 3;
  double peak = 441.0, budget = 1.0;
  std::string seqs = "1024,4096", coretypes = "Haswell,auto", blis_archs = "auto,skx";
  std::string openblas = "/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0";
  std::string blis = "/usr/lib/x86_64-linux-gnu/blis-openmp/libblis.so.4";
  int64_t sample_rows = 16;
  std::string stat = "median";
  int retries = 5;
  app.add_option("--threads", threads, "threads for every library (OpenMP; openblas/bli_thread_set_num_threads)");
  app.add_option("--reps", reps, "timed calls per cell and round (median; fewer if a cell exceeds --cell-seconds)");
  app.add_option("--cell-seconds", budget, "time budget per cell and round");
  app.add_option("--rounds", rounds, "rounds over all cells, interleaved; a cell reports the median over rounds");
  app.add_option("--seqs", seqs, "token counts T, comma separated");
  app.add_option("--openblas", openblas, "OpenBLAS shared library to dlopen");
  app.add_option("--openblas-coretypes", coretypes,
                 "OPENBLAS_CORETYPE per OpenBLAS column, comma separated ('auto' = unset: OpenBLAS detects the CPU)");
  app.add_option("--blis", blis, "BLIS shared library to dlopen");
  app.add_option("--blis-archs", blis_archs,
                 "BLIS sub-configuration per BLIS column, comma separated ('auto' = BLIS detects the CPU)");
  app.add_option("--check-rows", sample_rows, "rows of C checked against the double-precision reference");
  app.add_option("--peak-gflops", peak, "fp32 peak of the cores used");
  app.add_option("--retries", retries, "times a cell is measured again when other processes interrupted most calls");
  app.add_option("--stat", stat, "per-round statistic of the call times: median or min")
      ->check(CLI::IsMember({"median", "min"}));
  CLI11_PARSE(app, argc, argv);
  omp_set_num_threads(threads);

  const char* env_core = std::getenv("OPENBLAS_CORETYPE");
  std::printf(
      "gemm_libraries threads=%d rounds=%d reps<=%d stat=%s peak=%.0f GFLOP/s  OPENBLAS_CORETYPE(env)=%s  "
      "loadavg: %s\n",
      threads, rounds, reps, stat.c_str(), peak, env_core ? env_core : "(unset)", loadavg().c_str());

  std::vector<Library> libs;
  libs.push_back(make_onednn());
  {
    int instance = 0;
    for (const std::string& c : split(coretypes)) libs.push_back(make_openblas(openblas, c, threads, instance++));
  }
  {
    int instance = 0;
    for (const std::string& a : split(blis_archs)) libs.push_back(make_blis(blis, a, threads, instance++));
  }
#if RT_BENCH_LIBXSMM
  libs.push_back(make_libxsmm());
#else
  libs.push_back(Library{"libxsmm", "not built in (libxsmm-dev static libs not found by CMake)", {}, {}});
#endif
  for (const Library& l : libs) std::printf("  %-22s %s\n", l.name.c_str(), l.note.c_str());

  std::vector<Shape> shapes;
  for (const std::string& t : split(seqs))
    for (const Shape& s : model_shapes(std::stoll(t))) shapes.push_back(s);

  // Data and checks first: every library's C must match the double reference and oneDNN before any timing.
  std::vector<Data> data;
  std::vector<std::vector<bool>> usable(shapes.size(), std::vector<bool>(libs.size(), false));
  double worst = 0;
  for (size_t si = 0; si < shapes.size(); ++si) {
    const Shape& s = shapes[si];
    data.push_back(make_data(s, static_cast<uint32_t>(1 + si), sample_rows));
    Data& d = data.back();
    const double tol = tolerance(s);
    std::vector<float> C(static_cast<size_t>(s.M * s.ldc), NAN);
    libs[0].run(s, d.A.data(), d.B.data(), C.data());
    const double e0 = err_vs_ref(s, d, C);
    if (!(e0 <= tol)) {
      std::printf("FAIL: %s %s: oneDNN max rel err %.3g vs double reference > tol %.3g\n", s.name.c_str(),
                  s.dims().c_str(), e0, tol);
      return 1;
    }
    d.onednn = C;
    for (int64_t i = 0; i < s.M; ++i)
      for (int64_t j = 0; j < s.N; ++j)
        d.onednn_max = std::max(d.onednn_max, std::abs(static_cast<double>(C[static_cast<size_t>(i * s.ldc + j)])));
    usable[si][0] = true;
    worst = std::max(worst, e0 / tol);
    for (size_t li = 1; li < libs.size(); ++li) {
      const Library& l = libs[li];
      if (!l.run || !l.supports(s)) continue;
      std::fill(C.begin(), C.end(), NAN);
      l.run(s, d.A.data(), d.B.data(), C.data());
      const double er = err_vs_ref(s, d, C), eo = err_vs_onednn(s, d, C);
      if (!(er <= tol) || !(eo <= 2 * tol)) {
        std::printf("FAIL: %s %s: %s max rel err %.3g vs double reference (tol %.3g), %.3g vs oneDNN (tol %.3g)\n",
                    s.name.c_str(), s.dims().c_str(), l.name.c_str(), er, tol, eo, 2 * tol);
        return 1;
      }
      usable[si][li] = true;
      worst = std::max({worst, er / tol, eo / (2 * tol)});
    }
  }
  std::printf(
      "checks: every available library matches the double reference (%ld rows per shape) and oneDNN "
      "(all entries); worst error = %.2f of the tolerance 4*sqrt(K)*FLT_EPSILON*max|C|\n",
      static_cast<long>(sample_rows), worst);

  // Timing: rounds interleave all cells (library order rotates each round) so that load from other processes
  // spreads over the libraries; a cell is the median over rounds of the per-round median call time.
  std::vector<std::vector<std::vector<double>>> secs(shapes.size(), std::vector<std::vector<double>>(libs.size()));
  std::vector<std::vector<int>> contended_cell(shapes.size(), std::vector<int>(libs.size(), 0));
  for (int r = 0; r < rounds; ++r) {
    const long before = preemptions();
    int retried = 0, contended = 0;
    for (size_t si = 0; si < shapes.size(); ++si) {
      const Shape& s = shapes[si];
      std::vector<float> C(static_cast<size_t>(s.M * s.ldc));
      for (size_t k = 0; k < libs.size(); ++k) {
        const size_t li = (k + static_cast<size_t>(r)) % libs.size();
        if (!usable[si][li]) continue;
        // Too few clean calls: another process held a core through the cell; wait a little and measure it again.
        Timing tm = time_cell(libs[li], s, data[si], C, reps, budget, stat == "min");
        for (int a = 0; a < retries && tm.clean < std::max(3, tm.calls / 3); ++a) {
          ++retried;
          std::this_thread::sleep_for(std::chrono::milliseconds(200));
          const Timing again = time_cell(libs[li], s, data[si], C, reps, budget, stat == "min");
          if (again.clean * tm.calls > tm.clean * again.calls) tm = again;
        }
        if (tm.clean < std::max(3, tm.calls / 3)) ++contended, ++contended_cell[si][li];
        if (std::getenv("GEMM_LIBRARIES_DEBUG"))
          std::printf("  %-28s %-26s %8.1f GF/s clean calls %d/%d\n", s.name.c_str(), libs[li].name.c_str(),
                      s.flops() / tm.seconds / 1e9, tm.clean, tm.calls);
        secs[si][li].push_back(tm.seconds);
      }
    }
    std::printf(
        "round %d/%d: %ld involuntary context switches, %d cells measured again, %d still contended; "
        "loadavg %s\n",
        r + 1, rounds, preemptions() - before, retried, contended, loadavg().c_str());
    std::fflush(stdout);
  }

  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  };
  // Table (Markdown, so docs/gemm.md can take it as printed).
  auto width = [&](size_t li) { return static_cast<int>(std::max<size_t>(9, libs[li].name.size())); };
  std::printf("\n| %-27s | %-16s |", "shape (C = op(A) op(B))", "MxNxK op");
  for (size_t li = 0; li < libs.size(); ++li) std::printf(" %*s |", width(li), libs[li].name.c_str());
  std::printf(" best, %% of %.0f |\n|%s|%s|", peak, std::string(29, '-').c_str(), std::string(18, '-').c_str());
  for (size_t li = 0; li < libs.size(); ++li)
    std::printf("%s:|", std::string(static_cast<size_t>(width(li)) + 1, '-').c_str());
  std::printf("---|\n");
  std::vector<double> log_sum(libs.size(), 0.0);
  std::vector<int> count(libs.size(), 0), wins(libs.size(), 0);
  std::vector<double> onednn_vs_best;
  int marked = 0;
  for (size_t si = 0; si < shapes.size(); ++si) {
    const Shape& s = shapes[si];
    std::printf("| %-27s | %-16s |", s.name.c_str(), s.dims().c_str());
    size_t best = 0;
    double best_g = -1;
    std::vector<double> g(libs.size(), -1);
    for (size_t li = 0; li < libs.size(); ++li) {
      if (secs[si][li].empty()) {
        std::printf(" %*s |", width(li), "n/a");
        continue;
      }
      g[li] = s.flops() / median(secs[si][li]) / 1e9;
      // '~': in most rounds other processes interrupted most calls of this cell, even after the retries.
      const bool contended = 2 * contended_cell[si][li] > rounds;
      marked += contended;
      std::printf(" %*.1f%s |", contended ? width(li) - 1 : width(li), g[li], contended ? "~" : "");
      if (g[li] > best_g) best_g = g[li], best = li;
    }
    for (size_t li = 0; li < libs.size(); ++li)
      if (g[li] > 0) log_sum[li] += std::log(g[li]), ++count[li];
    ++wins[best];
    onednn_vs_best.push_back(g[0] / best_g);
    std::printf(" %s %.0f%% |\n", libs[best].name.c_str(), 100.0 * best_g / peak);
  }
  std::printf("| %-27s | %-16s |", "geometric mean", "");
  size_t best_lib = 0;
  double best_geo = -1;
  for (size_t li = 0; li < libs.size(); ++li) {
    if (count[li] == 0) {
      std::printf(" %*s |", width(li), "n/a");
      continue;
    }
    // A library that ran only some shapes (libxsmm's n/a cells) gets a '*': its mean is over fewer shapes.
    const double geo = std::exp(log_sum[li] / count[li]);
    const bool all = count[li] == static_cast<int>(shapes.size());
    std::printf(" %*.1f%s |", all ? width(li) : width(li) - 1, geo, all ? "" : "*");
    if (all && geo > best_geo) best_geo = geo, best_lib = li;
  }
  std::printf(" %s %.0f%% |\n| %-27s | %-16s |", libs[best_lib].name.c_str(), 100.0 * best_geo / peak, "shapes won",
              "");
  for (size_t li = 0; li < libs.size(); ++li) std::printf(" %*d |", width(li), wins[li]);
  std::printf(
      " |\n\nGFLOP/s = 2MNK / call time; per round the %s of the calls no other process interrupted, then the "
      "median over %d rounds. %d cells marked ~ (contended in most rounds). loadavg at end: %s\n",
      stat.c_str(), rounds, marked, loadavg().c_str());
  const double worst_ratio = *std::min_element(onednn_vs_best.begin(), onednn_vs_best.end());
  std::printf(
      "PASS: results checked; fastest by geometric mean over all %zu shapes: %s (%.1f GFLOP/s, %.0f%% of "
      "%.0f); oneDNN wins %d/%zu shapes, geometric mean %.1f GFLOP/s, never below %.0f%% of the best library\n",
      shapes.size(), libs[best_lib].name.c_str(), best_geo, 100.0 * best_geo / peak, peak, wins[0], shapes.size(),
      std::exp(log_sum[0] / count[0]), 100.0 * worst_ratio);
  return 0;
}
