// Proves that flash attention forward+backward needs O(T*D) extra memory, not O(T^2), at T = 65,536 (causal).
//
// Three measures of the extra memory (peak during the call minus the level just before it; the inputs and outputs
// are allocated and touched before):
//   - operator new: every global new/delete variant of this binary is replaced and counts its bytes;
//   - malloc family: malloc, calloc, realloc, reallocarray, free, memalign, posix_memalign, aligned_alloc, valloc
//     and pvalloc are interposed (glibc supports replacing them by symbol interposition) and forward to glibc's
//     __libc_* entry points, so allocations from any library (libstdc++, libgomp, oneDNN) count. Bytes are
//     malloc_usable_size, so both counters include allocator rounding. operator new calls malloc, so this
//     counter includes the first;
//   - peak RSS: VmHWM of /proc/self/status, reset just before the call through /proc/self/clear_refs ("5"),
//     minus VmRSS at that moment (after malloc_trim): catches any allocator, mmap and thread stacks.
// Problem: Hq = 2 query heads sharing Hk = 1 key/value head, D = 64, causal; T = 16,384, then 65,536.
// Bound for each measure: 16 * (T*Hq*D*4 bytes, the size of q) + 4 MiB per thread for tiles + 4 MiB: 524 MiB at
// T = 65,536, 1/31 of the 16 GiB that T^2 fp32 scores would take. The T = 65,536 run is ~3.9 TFLOP (fwd+bwd
// counted as 3.5x the forward's 4*T^2*D*Hq/2): ~13 s at 300 GFLOP/s on the two cores. Nothing is timed.
#include <gtest/gtest.h>
#include <malloc.h>
#include <omp.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <new>
#include <string>
#include <vector>

#include "attention/attention_kernels.h"
#include "core/timer.h"

// glibc's own allocator entry points (exported by libc.so.6, not declared in its headers).
extern "C" {
void* __libc_malloc(size_t size);
void __libc_free(void* ptr);
void* __libc_calloc(size_t n, size_t size);
void* __libc_realloc(void* ptr, size_t size);
void* __libc_memalign(size_t alignment, size_t size);
void* __libc_valloc(size_t size);
void* __libc_pvalloc(size_t size);
}

namespace {

// Current and peak bytes of one family of allocation calls. Constant-initialised: usable before main.
struct Counter {
  std::atomic<int64_t> current{0}, peak{0};
  void add(int64_t n) {
    const int64_t now = current.fetch_add(n, std::memory_order_relaxed) + n;
    int64_t p = peak.load(std::memory_order_relaxed);
    while (now > p && !peak.compare_exchange_weak(p, now, std::memory_order_relaxed)) {
    }
  }
  void sub(int64_t n) { current.fetch_sub(n, std::memory_order_relaxed); }
  void reset_peak() { peak.store(current.load(std::memory_order_relaxed), std::memory_order_relaxed); }
};
constinit Counter g_malloc, g_new;

int64_t usable(void* p) { return p ? static_cast<int64_t>(malloc_usable_size(p)) : 0; }

void* track_malloc(void* p) {
  g_malloc.add(usable(p));
  return p;
}

// operator new: malloc (the interposed one, so g_malloc counts it too) plus its own count.
void* new_bytes(size_t size, size_t align, bool nothrow) {
  if (size == 0) size = 1;
  void* p = nullptr;
  if (align <= __STDCPP_DEFAULT_NEW_ALIGNMENT__) {
    p = std::malloc(size);
  } else if (posix_memalign(&p, align, size) != 0) {
    p = nullptr;
  }
  if (!p) {
    if (nothrow) return nullptr;
    throw std::bad_alloc();
  }
  g_new.add(usable(p));
  return p;
}

void delete_bytes(void* p) {
  if (!p) return;
  g_new.sub(usable(p));
  std::free(p);
}

}  // namespace

// ---- malloc family, interposed over glibc's ----
extern "C" {
void* malloc(size_t size) noexcept { return track_malloc(__libc_malloc(size)); }
void* calloc(size_t n, size_t size) noexcept { return track_malloc(__libc_calloc(n, size)); }
void free(void* ptr) noexcept {
  g_malloc.sub(usable(ptr));
  __libc_free(ptr);
}
void* realloc(void* ptr, size_t size) noexcept {
  const int64_t old = usable(ptr);
  void* p = __libc_realloc(ptr, size);
  if (p) {
    g_malloc.add(usable(p));
    g_malloc.sub(old);
  } else if (ptr && size == 0) {
    g_malloc.sub(old);  // glibc's realloc(p, 0) frees p
  }
  return p;
}
void* reallocarray(void* ptr, size_t n, size_t size) noexcept {
  size_t bytes;
  if (__builtin_mul_overflow(n, size, &bytes)) {
    errno = ENOMEM;
    return nullptr;
  }
  return realloc(ptr, bytes);
}
void* memalign(size_t alignment, size_t size) noexcept { return track_malloc(__libc_memalign(alignment, size)); }
void* aligned_alloc(size_t alignment, size_t size) noexcept { return track_malloc(__libc_memalign(alignment, size)); }
int posix_memalign(void** out, size_t alignment, size_t size) noexcept {
  if (alignment % sizeof(void*) != 0 || (alignment & (alignment - 1)) != 0 || alignment == 0) return EINVAL;
  void* p = __libc_memalign(alignment, size);
  if (!p) return ENOMEM;
  *out = track_malloc(p);
  return 0;
}
void* valloc(size_t size) noexcept { return track_malloc(__libc_valloc(size)); }
void* pvalloc(size_t size) noexcept { return track_malloc(__libc_pvalloc(size)); }
}

// ---- every replaceable global operator new / delete ----
void* operator new(size_t n) { return new_bytes(n, 0, false); }
void* operator new[](size_t n) { return new_bytes(n, 0, false); }
void* operator new(size_t n, const std::nothrow_t&) noexcept { return new_bytes(n, 0, true); }
void* operator new[](size_t n, const std::nothrow_t&) noexcept { return new_bytes(n, 0, true); }
void* operator new(size_t n, std::align_val_t a) { return new_bytes(n, static_cast<size_t>(a), false); }
void* operator new[](size_t n, std::align_val_t a) { return new_bytes(n, static_cast<size_t>(a), false); }
void* operator new(size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return new_bytes(n, static_cast<size_t>(a), true);
}
void* operator new[](size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return new_bytes(n, static_cast<size_t>(a), true);
}
void operator delete(void* p) noexcept { delete_bytes(p); }
void operator delete[](void* p) noexcept { delete_bytes(p); }
void operator delete(void* p, size_t) noexcept { delete_bytes(p); }
void operator delete[](void* p, size_t) noexcept { delete_bytes(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { delete_bytes(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { delete_bytes(p); }
void operator delete(void* p, std::align_val_t) noexcept { delete_bytes(p); }
void operator delete[](void* p, std::align_val_t) noexcept { delete_bytes(p); }
void operator delete(void* p, size_t, std::align_val_t) noexcept { delete_bytes(p); }
void operator delete[](void* p, size_t, std::align_val_t) noexcept { delete_bytes(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { delete_bytes(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { delete_bytes(p); }

namespace rt {
namespace {

constexpr int64_t kMiB = int64_t{1} << 20;

double mib(int64_t bytes) { return static_cast<double>(bytes) / static_cast<double>(kMiB); }

// Resets VmHWM to the current RSS; false where the kernel does not allow it.
bool reset_peak_rss() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
  f.flush();
  return f.good();
}

// Extra bytes one forward+backward took, by each measure.
struct Extra {
  int64_t new_bytes = 0, malloc_bytes = 0, rss_bytes = -1;  // rss -1: unavailable
};

// Inputs and outputs of one problem. q, o, dout, dq: (T, Hq, D); k, v, dk, dv: (T, Hk, D); lse, delta: (Hq, T).
struct Buffers {
  std::vector<float> q, k, v, dout, o, lse, delta, dq, dk, dv;
  explicit Buffers(const AttentionProblem& p)
      : q(static_cast<size_t>(p.Tq * p.Hq * p.D)), k(static_cast<size_t>(p.Tk * p.Hk * p.D)), v(k.size()),
        dout(q.size()), o(q.size()), lse(static_cast<size_t>(p.Hq * p.Tq)), delta(lse.size()), dq(q.size()),
        dk(k.size()), dv(k.size()) {
    uint32_t s = 12345;  // xorshift: cheap values in [-1, 1); the contents do not matter here
    for (auto* x : {&q, &k, &v, &dout}) {
      for (float& e : *x) {
        s ^= s << 13, s ^= s >> 17, s ^= s << 5;
        e = static_cast<float>(s) * 0x1.0p-31f - 1.f;
      }
    }
  }
};

void forward_backward(const AttentionProblem& p, Buffers& b) {
  attention_flash_forward(p, b.q.data(), b.k.data(), b.v.data(), b.o.data(), b.lse.data());
  attention_delta(p, b.o.data(), b.dout.data(), b.delta.data());
  attention_flash_backward(p, b.q.data(), b.k.data(), b.v.data(), b.dout.data(), b.lse.data(), b.delta.data(),
                           b.dq.data(), b.dk.data(), b.dv.data());
}

AttentionProblem problem(int64_t T, int64_t Hq, int64_t Hk, int64_t D) {
  AttentionProblem p;
  p.Tq = p.Tk = T;
  p.Hq = Hq;
  p.Hk = Hk;
  p.D = D;
  p.causal = true;
  p.scale = 1.f / std::sqrt(static_cast<float>(D));
  return p;
}

// Runs forward+backward on allocated, touched buffers and returns the extra memory of the run.
Extra measure(const AttentionProblem& p, Buffers& b) {
  malloc_trim(0);  // return freed pages, so the RSS baseline holds only live data
  const bool rss_ok = reset_peak_rss();
  const int64_t rss0 = memory_resident_bytes();
  const int64_t new0 = g_new.current.load(), malloc0 = g_malloc.current.load();
  g_new.reset_peak();
  g_malloc.reset_peak();
  forward_backward(p, b);
  Extra e;
  e.new_bytes = g_new.peak.load() - new0;
  e.malloc_bytes = g_malloc.peak.load() - malloc0;
  if (rss_ok) e.rss_bytes = memory_peak_bytes() - rss0;
  return e;
}

// The outputs hold finite numbers (the kernels ran): lse and a sample of o, dq, dk, dv.
void expect_finite(const Buffers& b) {
  const auto finite = [](const std::vector<float>& x) {
    for (size_t i = 0; i < x.size(); i += 97)
      if (!std::isfinite(x[i])) return false;
    return true;
  };
  EXPECT_TRUE(finite(b.lse) && finite(b.o) && finite(b.dq) && finite(b.dk) && finite(b.dv));
}

TEST(AttentionMemory, FlashForwardBackwardExtraMemoryIsLinearInT) {
  const int64_t Hq = 2, Hk = 1, D = 64, threads = omp_get_max_threads();
  {  // warm-up: OpenMP thread pool, GEMM library state
    const AttentionProblem p = problem(1024, Hq, Hk, D);
    Buffers b(p);
    forward_backward(p, b);
  }
  for (int64_t T : {int64_t{16384}, int64_t{65536}}) {
    const AttentionProblem p = problem(T, Hq, Hk, D);
    Buffers b(p);
    const Extra e = measure(p, b);
    expect_finite(b);
    const int64_t q_bytes = T * Hq * D * 4, scores_bytes = T * T * 4;
    const int64_t bound = 16 * q_bytes + threads * 4 * kMiB + 4 * kMiB;
    if (T == 65536) {
      ASSERT_LT(16 * bound, scores_bytes) << "the bound must be far below T^2 * 4 bytes";
    }
    std::printf("[  memory  ] T=%ld Hq=%ld Hk=%ld D=%ld causal threads=%ld: extra operator new %.1f MiB, malloc family "
                "%.1f MiB, peak RSS %s MiB; bound %.0f MiB = 16 x q (%.0f MiB) + %ld x 4 MiB + 4 MiB; "
                "T^2 fp32 scores %.0f MiB\n",
                T, Hq, Hk, D, threads, mib(e.new_bytes), mib(e.malloc_bytes),
                e.rss_bytes < 0 ? "n/a" : std::to_string(static_cast<int64_t>(mib(e.rss_bytes) + 0.5)).c_str(),
                mib(bound), mib(q_bytes), threads, mib(scores_bytes));
    EXPECT_LT(e.new_bytes, bound) << "operator new, T=" << T;
    EXPECT_LT(e.malloc_bytes, bound) << "malloc family, T=" << T;
    if (e.rss_bytes < 0) {
      std::printf("[  memory  ] /proc/self/clear_refs not writable: peak RSS not measured\n");
    } else {
      EXPECT_LT(e.rss_bytes, bound) << "peak RSS, T=" << T;
    }
  }
}

// Keeps the compiler from eliding an allocation whose pointer is otherwise unused.
void keep(const void* p) { asm volatile("" : : "g"(p) : "memory"); }

// The counters see allocations of every kind, so a small reading above means few allocations, not a blind spot.
TEST(AttentionMemory, CountersSeeEveryAllocationKind) {
  const int64_t n0 = g_new.current.load(), m0 = g_malloc.current.load();
  auto* a = new std::vector<float>(1 << 20);
  void* b = std::malloc(3 << 20);
  void* c = nullptr;
  ASSERT_EQ(posix_memalign(&c, 64, 5 << 20), 0);
  void* d = std::aligned_alloc(4096, 7 << 20);
  auto* e = new (std::align_val_t{256}) float[1 << 18];
  for (const void* p : {static_cast<const void*>(a), static_cast<const void*>(b), static_cast<const void*>(c),
                        static_cast<const void*>(d), static_cast<const void*>(e)}) {
    keep(p);
  }
  EXPECT_GE(g_new.current.load() - n0, (4 << 20) + (1 << 20));
  EXPECT_GE(g_malloc.current.load() - m0, (4 << 20) + (1 << 20) + (3 << 20) + (5 << 20) + (7 << 20));
  b = std::realloc(b, 9 << 20);
  keep(b);
  EXPECT_GE(g_malloc.current.load() - m0, (4 << 20) + (1 << 20) + (9 << 20) + (5 << 20) + (7 << 20));
  delete a;
  std::free(b);
  std::free(c);
  std::free(d);
  operator delete[](e, std::align_val_t{256});
  EXPECT_EQ(g_new.current.load(), n0);
  EXPECT_EQ(g_malloc.current.load(), m0);
  // An allocation made inside another shared library (libc's strdup) goes through the interposed malloc too.
  const std::string text(3 << 20, 'x');
  const int64_t before_dup = g_malloc.current.load();
  char* dup = strdup(text.c_str());
  keep(dup);
  EXPECT_GE(g_malloc.current.load() - before_dup, 3 << 20);
  std::free(dup);
}

}  // namespace
}  // namespace rt
