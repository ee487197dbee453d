// The SIMT emulator's scheduler: a block's threads as fibers on the calling OS thread, barriers, warp exchange,
// cp.async.
#include <sys/mman.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "tests/cuda_emulation/simt.h"
#include "tests/cuda_emulation/simt_fiber.h"
#include "tests/cuda_emulation/simt_limits.h"
#include "tests/cuda_emulation/simt_ptx.h"

namespace simt {
namespace {

constexpr int kMaxThreads = 1024;
constexpr size_t kStackBytes = 256 * 1024;

struct CpAsyncCopy {
  void* shared;
  const void* global;
  bool valid;
};

struct Fiber {
  FiberContext context;
  ThreadPosition position;
  bool done = false;
  std::vector<CpAsyncCopy> copies;  // issued and not yet performed, oldest first
  std::vector<size_t> group_ends;   // committed groups: one past each group's last copy in `copies`
};

struct Warp {
  int size = 0, live = 0, arrived = 0;
  unsigned generation = 0;
  Slot slots[2][32];  // by generation parity: a lane can be at most one exchange ahead of the slowest
};

struct Block {
  int live = 0, arrived = 0;
  unsigned generation = 0;
  std::vector<Warp> warps;
};

struct Emulator {
  char* stacks = nullptr;  // kMaxThreads stacks, mapped once and reused by every block
  std::vector<Fiber> fibers;
  Block block;
  FiberContext scheduler;
  Fiber* current = nullptr;
  const std::function<void()>* body = nullptr;
  uint64_t progress = 0;              // arrivals and exits: a round without any is a deadlock
  std::vector<unsigned char> shared;  // the running block's dynamic shared memory
};

// One per OS thread: a kernel runs on the thread that launches it.
Emulator& emulator() {
  thread_local Emulator e;
  return e;
}

Fiber& current_fiber() {
  Fiber* f = emulator().current;
  if (!f) fail("a device built-in was used outside a kernel");
  return *f;
}

void yield() {
  Emulator& e = emulator();
  fiber_switch(e.current->context, e.scheduler);
}

void perform(const CpAsyncCopy& c) {
  if (c.valid)
    std::memcpy(c.shared, c.global, 16);
  else
    std::memset(c.shared, 0, 16);
}

void release_if_complete(Block& b) {
  if (b.arrived > 0 && b.arrived == b.live) {
    b.arrived = 0;
    ++b.generation;
  }
}
void release_if_complete(Warp& w, Slot* slots, void (*complete)(Slot*)) {
  if (w.arrived > 0 && w.arrived == w.live) {
    if (complete) complete(slots);
    w.arrived = 0;
    ++w.generation;
  }
}

void fiber_main() {
  Emulator& e = emulator();
  (*e.body)();
  Fiber& f = *e.current;
  if (!f.copies.empty()) fail("a thread exited with cp.async copies that no cp.async.wait_group retired");
  f.done = true;
  ++e.progress;
  --e.block.live;
  release_if_complete(e.block);
  Warp& w = e.block.warps[f.position.warp];
  --w.live;
  if (w.arrived > 0) fail("a thread exited while other lanes of its warp wait in a warp collective");
  fiber_exit(f.context, e.scheduler);
}

void run_block(uint3 block_index, dim3 block_dim, dim3 grid_dim, size_t shared_bytes) {
  Emulator& e = emulator();
  const int threads = static_cast<int>(block_dim.x * block_dim.y * block_dim.z);
  // Uninitialised shared memory reads as NaN (0xFFFF in bf16, 0xFFFFFFFF in fp32), never as plausible zeros.
  e.shared.assign(shared_bytes, 0xFF);
  e.block = Block{};
  e.block.live = threads;
  e.block.warps.assign((threads + 31) / 32, Warp{});
  e.fibers.assign(threads, Fiber{});
  for (int i = 0; i < threads; ++i) {
    Fiber& f = e.fibers[i];
    const unsigned x = i % block_dim.x, y = (i / block_dim.x) % block_dim.y, z = i / (block_dim.x * block_dim.y);
    f.position = ThreadPosition{uint3{x, y, z}, block_index, block_dim, grid_dim, i % 32, i / 32};
    Warp& w = e.block.warps[i / 32];
    ++w.size;
    ++w.live;
    fiber_prepare(f.context, e.stacks + static_cast<size_t>(i) * kStackBytes, kStackBytes, fiber_main);
  }
  // Warp by warp, each as far as it can go (to a __syncthreads, or its end) before the next starts: warps drift apart
  // as far as barriers allow, so a missing barrier shows. Odd blocks run their warps in reverse order, so a hazard
  // shows whichever warp is the early one.
  const int warps = static_cast<int>(e.block.warps.size());
  const bool reverse = (block_index.x + block_index.y + block_index.z) % 2 == 1;
  while (e.block.live > 0) {
    const uint64_t before = e.progress;
    for (int k = 0; k < warps; ++k) {
      const int w = reverse ? warps - 1 - k : k;
      for (uint64_t warp_before = ~e.progress; warp_before != e.progress;) {
        warp_before = e.progress;
        for (int i = 32 * w; i < std::min(threads, 32 * w + 32); ++i) {
          Fiber& f = e.fibers[i];
          if (f.done) continue;
          e.current = &f;
          fiber_switch(e.scheduler, f.context);
          e.current = nullptr;
        }
      }
    }
    if (e.progress == before) {
      std::string what = "deadlock in block (" + std::to_string(block_index.x) + "," + std::to_string(block_index.y) +
                         "," + std::to_string(block_index.z) + "): " + std::to_string(e.block.arrived) + " of " +
                         std::to_string(e.block.live) + " live threads wait at __syncthreads";
      for (size_t w = 0; w < e.block.warps.size(); ++w)
        if (e.block.warps[w].arrived > 0)
          what += "; warp " + std::to_string(w) + ": " + std::to_string(e.block.warps[w].arrived) + " of " +
                  std::to_string(e.block.warps[w].live) + " lanes wait in a warp collective";
      fail(what.c_str());
    }
  }
}

}  // namespace

void fail(const char* what) {
  std::fprintf(stderr, "SIMT emulator: %s\n", what);
  std::fflush(stderr);
  std::abort();
}

const ThreadPosition& position() { return current_fiber().position; }

void sync_block() {
  Emulator& e = emulator();
  current_fiber();
  Block& b = e.block;
  const unsigned mine = b.generation;
  ++e.progress;
  ++b.arrived;
  release_if_complete(b);
  while (b.generation == mine) yield();
}

const Slot* warp_exchange(const Slot& slot, void (*complete)(Slot*)) {
  Emulator& e = emulator();
  const Fiber& f = current_fiber();
  Warp& w = e.block.warps[f.position.warp];
  if (w.live != w.size) fail("a warp collective ran after some lanes of the warp had exited");
  const unsigned mine = w.generation;
  Slot* slots = w.slots[mine & 1];
  slots[f.position.lane] = slot;
  ++e.progress;
  ++w.arrived;
  release_if_complete(w, slots, complete);
  while (w.generation == mine) yield();
  return slots;
}

void sync_warp() { warp_exchange(Slot{}); }

unsigned char* dynamic_shared() {
  current_fiber();
  return emulator().shared.data();
}
size_t dynamic_shared_bytes() { return emulator().shared.size(); }

void run_grid(dim3 grid, dim3 block, size_t shared_bytes, const std::function<void()>& body) {
  Emulator& e = emulator();
  if (e.current) fail("a kernel was launched from inside a kernel");
  const uint64_t threads = static_cast<uint64_t>(block.x) * block.y * block.z;
  if (threads == 0 || threads > kMaxThreads) fail("launch with a block of 0 or more than 1024 threads");
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 || grid.z > 65535)
    fail("launch with an empty grid or gridDim.y/z above 65535");
  check_dynamic_shared_launch(shared_bytes);
  if (!e.stacks) {
    void* p = mmap(nullptr, kMaxThreads * kStackBytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) fail("cannot map the fibers' stacks");
    e.stacks = static_cast<char*>(p);
  }
  e.body = &body;
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) run_block(uint3{x, y, z}, block, grid, shared_bytes);
  e.body = nullptr;
  e.fibers.clear();
}

void cp_async_16(void* shared, const void* global, bool valid) {
  check_shared_range(shared, 16, "cp.async destination");
  if (reinterpret_cast<uintptr_t>(global) % 16 != 0) fail("cp.async source is not 16-byte aligned");
  // The copy may land any time until its wait_group: poison the destination now (a read of the old contents after
  // the issue sees NaN) and write the data at the wait (a read before the wait sees NaN too).
  std::memset(shared, 0xFF, 16);
  current_fiber().copies.push_back({shared, global, valid});
}

void cp_async_commit() {
  Fiber& f = current_fiber();
  f.group_ends.push_back(f.copies.size());
}

void cp_async_wait(int groups_left_in_flight) {
  Fiber& f = current_fiber();
  const int retire = static_cast<int>(f.group_ends.size()) - groups_left_in_flight;
  if (retire <= 0) return;
  const size_t end = f.group_ends[retire - 1];
  for (size_t i = 0; i < end; ++i) perform(f.copies[i]);
  f.copies.erase(f.copies.begin(), f.copies.begin() + static_cast<std::ptrdiff_t>(end));
  f.group_ends.erase(f.group_ends.begin(), f.group_ends.begin() + retire);
  for (size_t& g : f.group_ends) g -= end;
}

}  // namespace simt
