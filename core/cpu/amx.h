// AMX tiles, for kernels that use them: the process's permission from Linux, and the one tile configuration they use.
#pragma once
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>

namespace rt {

// Linux grants the AMX tile state only to a process that asks for it (arch_prctl ARCH_REQ_XCOMP_PERM, XTILEDATA).
// True once granted; asking again is harmless.
inline bool amx_request_permission() {
  constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
}

// Palette 1 with all eight tiles at their largest, 16 rows of 64 bytes: a 16x16 fp32 block, or 16 rows of 16 bf16
// pairs. For _tile_loadconfig.
struct alignas(64) AmxTileConfig {
  uint8_t palette = 1, start_row = 0, reserved[14] = {};
  uint16_t colsb[16] = {64, 64, 64, 64, 64, 64, 64, 64};
  uint8_t rows[16] = {16, 16, 16, 16, 16, 16, 16, 16};
};

}  // namespace rt
