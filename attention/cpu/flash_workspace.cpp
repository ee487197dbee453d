// Grow-only scratch buffers of the CPU flash kernels, kept across calls (see flash_tiles.h, workspace()).
#include <vector>

#include "attention/cpu/flash_tiles.h"

namespace rt::flash {

float* workspace(int slot, int64_t n) {
  struct Slot {
    AlignedBuf buf;
    int64_t size = 0;
  };
  static std::vector<Slot> slots;
  if (slot >= static_cast<int>(slots.size())) slots.resize(static_cast<size_t>(slot) + 1);
  Slot& s = slots[static_cast<size_t>(slot)];
  if (s.size < n) {
    s.buf = AlignedBuf();  // free first: the old and the new buffer are never held together
    s.buf = AlignedBuf(n);
    s.size = n;
  }
  return s.buf.get();
}

}  // namespace rt::flash
