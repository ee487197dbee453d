// Fibers for the SIMT emulator: a stack and a saved stack pointer, switched in user space (no system call, unlike
// swapcontext, which costs a signal-mask call per switch: the attention suite ran 3.5x slower on it).
#pragma once
#include <cstddef>

namespace simt {

struct FiberContext {
  void* sp = nullptr;  // the saved stack pointer while the fiber is not running
};

// Makes `c` start entry() on [stack, stack + bytes) at its first switch; entry must never return.
void fiber_prepare(FiberContext& c, char* stack, size_t bytes, void (*entry)());
// Saves the running context into `from` and resumes `to`.
void fiber_switch(FiberContext& from, FiberContext& to);

}  // namespace simt
