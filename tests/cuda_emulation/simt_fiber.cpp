// Fibers for the SIMT emulator on x86-64 System V: the callee-saved registers are pushed on the fiber's own stack, and
// the stack pointer is all a context holds. MXCSR and the x87 control word are not switched: every fiber of a thread
// runs with the thread's, and kernels do not change them.
#include "tests/cuda_emulation/simt_fiber.h"

#include <cstdint>
#include <cstdlib>

#include "tests/cuda_emulation/simt_fiber_sanitizer.h"

#if !defined(__x86_64__)
#error "the SIMT emulator's fibers are written for x86-64"
#endif

// rt_simt_fiber_switch(void** save_sp, void* load_sp)
asm(R"(
  .text
  .globl rt_simt_fiber_switch
  .type rt_simt_fiber_switch, @function
rt_simt_fiber_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size rt_simt_fiber_switch, .-rt_simt_fiber_switch
  .section .note.GNU-stack,"",@progbits
  .text
)");

extern "C" void rt_simt_fiber_switch(void** save_sp, void* load_sp);

namespace simt {
namespace {

thread_local void (*fiber_entry)() = nullptr;

// Every fiber starts here: it tells the sanitizer the switch onto its stack has finished, then runs the entry.
void fiber_start() {
  sanitizer_arrived(nullptr);
  fiber_entry();
  std::abort();  // entries end with fiber_exit
}

void switch_to(FiberContext& from, FiberContext& to, bool for_good) {
  void* fake_stack = nullptr;
  sanitizer_leaving(to, &fake_stack, for_good);
  rt_simt_fiber_switch(&from.sp, to.sp);
  sanitizer_arrived(fake_stack);  // resumed
}

}  // namespace

void fiber_prepare(FiberContext& c, char* stack, size_t bytes, void (*entry)()) {
  if (fiber_entry && fiber_entry != entry) std::abort();
  fiber_entry = entry;
  c.stack_bottom = stack;
  c.stack_size = bytes;
  sanitizer_fresh_stack(stack, bytes);
  // From the 16-byte aligned top down: a null return address for fiber_start, fiber_start (what the switch's `ret`
  // jumps to), then six zeroed callee-saved registers. fiber_start begins with %rsp = top - 8, as after a call.
  auto top = (reinterpret_cast<uintptr_t>(stack) + bytes) & ~uintptr_t{15};
  auto* slots = reinterpret_cast<uint64_t*>(top);
  slots[-1] = 0;
  slots[-2] = reinterpret_cast<uint64_t>(&fiber_start);
  for (int r = 3; r <= 8; ++r) slots[-r] = 0;
  c.sp = &slots[-8];
}

void fiber_switch(FiberContext& from, FiberContext& to) { switch_to(from, to, false); }

void fiber_exit(FiberContext& from, FiberContext& to) {
  switch_to(from, to, true);
  std::abort();  // never resumed
}

}  // namespace simt
