// Fibers for the SIMT emulator: a stack and a saved stack pointer, switched in user space (no system call, unlike
// swapcontext, which costs a signal-mask call per switch: the attention suite ran 3.5x slower on it). Switches are
// announced to AddressSanitizer, which checks the emulated kernels' memory accesses.
#pragma once
#include <cstddef>

namespace simt {

struct FiberContext {
  void* sp = nullptr;                  // the saved stack pointer while the context is not running
  const void* stack_bottom = nullptr;  // its stack (null: the OS thread's own, found when first needed)
  size_t stack_size = 0;
};

// Makes `c` start entry() on [stack, stack + bytes) at its first switch; entry must end with fiber_exit. Every fiber
// of one OS thread has the same entry.
void fiber_prepare(FiberContext& c, char* stack, size_t bytes, void (*entry)());
// Saves the running context into `from` and resumes `to`.
void fiber_switch(FiberContext& from, FiberContext& to);
// Leaves the running fiber for good and resumes `to`.
[[noreturn]] void fiber_exit(FiberContext& from, FiberContext& to);

}  // namespace simt
