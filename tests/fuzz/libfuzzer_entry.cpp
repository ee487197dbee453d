// libFuzzer's entry for one target, RT_FUZZ_TARGET (a function of fuzz_targets.h), compiled once per fuzz_<name>.
#include "tests/fuzz/fuzz_targets.h"

// The empty input first, once, before fuzzing: a target builds what it keeps (the checkpoint target's MPI and model)
// there, so that no input's leak check sees those allocations.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  rt::fuzz::RT_FUZZ_TARGET(nullptr, 0);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  rt::fuzz::RT_FUZZ_TARGET(data, size);
  return 0;
}
