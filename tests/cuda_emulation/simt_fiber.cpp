// Fibers for the SIMT emulator on x86-64 System V: callee-saved registers, MXCSR and the x87 control word are pushed
// on the fiber's own stack, and the stack pointer is all a context holds.
#include "tests/cuda_emulation/simt_fiber.h"

#include <cstdint>
#include <cstring>

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
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
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

void fiber_prepare(FiberContext& c, char* stack, size_t bytes, void (*entry)()) {
  // From the 16-byte aligned top down: a null return address for entry, entry (what the switch's `ret` jumps to),
  // six zeroed callee-saved registers, then MXCSR and the x87 control word at their defaults. entry starts with
  // %rsp = top - 8, as after a call.
  auto top = (reinterpret_cast<uintptr_t>(stack) + bytes) & ~uintptr_t{15};
  auto* slots = reinterpret_cast<uint64_t*>(top);
  slots[-1] = 0;
  slots[-2] = reinterpret_cast<uint64_t>(entry);
  for (int r = 3; r <= 8; ++r) slots[-r] = 0;
  const uint32_t mxcsr = 0x1F80;
  const uint16_t x87 = 0x037F;
  std::memcpy(&slots[-9], &mxcsr, sizeof mxcsr);
  std::memcpy(reinterpret_cast<char*>(&slots[-9]) + 4, &x87, sizeof x87);
  c.sp = &slots[-9];
}

void fiber_switch(FiberContext& from, FiberContext& to) { rt_simt_fiber_switch(&from.sp, to.sp); }

}  // namespace simt
