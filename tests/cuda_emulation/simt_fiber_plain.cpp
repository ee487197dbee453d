// The fibers' sanitizer announcements where no sanitizer is linked: nothing to tell.
#include "tests/cuda_emulation/simt_fiber_sanitizer.h"

namespace simt {

void sanitizer_fresh_stack(char*, size_t) {}
void sanitizer_leaving(FiberContext&, void**, bool) {}
void sanitizer_arrived(void*) {}

}  // namespace simt
