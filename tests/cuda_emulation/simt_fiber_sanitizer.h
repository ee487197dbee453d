// What the fibers tell AddressSanitizer about their stacks: simt_fiber_asan.cpp in the memcheck build, no-ops
// (simt_fiber_plain.cpp) otherwise.
#pragma once
#include <cstddef>

#include "tests/cuda_emulation/simt_fiber.h"

namespace simt {

// A fiber stack is about to be reused: the frames its last fiber never returned from are still poisoned.
void sanitizer_fresh_stack(char* stack, size_t bytes);
// About to switch to `to`; *fake_stack keeps the leaving context's state (none when it leaves for good).
void sanitizer_leaving(FiberContext& to, void** fake_stack, bool for_good);
// Arrived on a stack (fake_stack: what sanitizer_leaving kept there, or null at a fiber's start).
void sanitizer_arrived(void* fake_stack);

}  // namespace simt
