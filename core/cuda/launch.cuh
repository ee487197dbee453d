// The two constructs of the project's kernels that are not C++, as macros, so that the CPU SIMT emulator
// (tests/cuda_emulation/simt.h, defined first there) can run the same kernel sources in the test suite.
#pragma once

#ifndef RT_SIMT_EMULATION
// RT_LAUNCH(kernel, grid, block, shared_bytes, stream)(args...): kernel<<<grid, block, shared_bytes, stream>>>(args...)
#define RT_LAUNCH(kernel, grid, block, shared_bytes, stream) kernel<<<grid, block, shared_bytes, stream>>>
// The block's dynamic shared memory (the launch's shared_bytes) as a 16-byte aligned array of `type`.
#define RT_DYNAMIC_SHARED(type, name) extern __shared__ __align__(16) type name[]
#endif
