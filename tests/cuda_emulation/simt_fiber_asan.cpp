// The fibers' announcements to AddressSanitizer (the memcheck build): every stack switch, and stale poisoning of
// reused stacks. This file need not itself be instrumented; the binaries link the sanitizer's runtime.
#include <pthread.h>
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>

#include "tests/cuda_emulation/simt_fiber_sanitizer.h"

namespace simt {
namespace {

// A context with no stack of its own runs on the OS thread's.
void find_thread_stack(FiberContext& c) {
  if (c.stack_bottom) return;
  pthread_attr_t attr;
  void* bottom = nullptr;
  size_t size = 0;
  pthread_getattr_np(pthread_self(), &attr);
  pthread_attr_getstack(&attr, &bottom, &size);
  pthread_attr_destroy(&attr);
  c.stack_bottom = bottom;
  c.stack_size = size;
}

}  // namespace

void sanitizer_fresh_stack(char* stack, size_t bytes) {
  // The stack's last fiber ended inside fiber_start -> entry -> fiber_exit, which never return: their poisoning is
  // stale. Every other frame returned (and was unpoisoned); that chain lies within the top 16 KiB.
  const size_t stale = bytes < 16384 ? bytes : 16384;
  __asan_unpoison_memory_region(stack + bytes - stale, stale);
}

void sanitizer_leaving(FiberContext& to, void** fake_stack, bool for_good) {
  find_thread_stack(to);
  __sanitizer_start_switch_fiber(for_good ? nullptr : fake_stack, to.stack_bottom, to.stack_size);
}

void sanitizer_arrived(void* fake_stack) { __sanitizer_finish_switch_fiber(fake_stack, nullptr, nullptr); }

}  // namespace simt

// AddressSanitizer's defaults for the memcheck build (here, in a file every memcheck binary links): the
// process-lifetime GPU context and its tensors are never freed, by design (core/cuda/cuda_context.cpp), so leaks are
// not reported.
extern "C" const char* __asan_default_options() { return "detect_leaks=0"; }
