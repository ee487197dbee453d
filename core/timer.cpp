// Process memory readings from /proc/self/status.
#include "core/timer.h"

#include <cstdio>
#include <cstring>

namespace rt {
namespace {

int64_t status_kib(const char* key) {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  int64_t kib = 0;
  const size_t n = std::strlen(key);
  while (std::fgets(line, sizeof line, f)) {
    if (std::strncmp(line, key, n) == 0) {
      std::sscanf(line + n, " %ld", &kib);
      break;
    }
  }
  std::fclose(f);
  return kib;
}

}  // namespace

int64_t memory_resident_bytes() { return status_kib("VmRSS:") * 1024; }
int64_t memory_peak_bytes() { return status_kib("VmHWM:") * 1024; }

}  // namespace rt
