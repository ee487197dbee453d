// cpuid leaf 7: AVX512_BF16 is subleaf 1 EAX bit 5, AMX-BF16 subleaf 0 EDX bit 22; RINGTRAIN_MAX_CPU_ISA caps them.
#include "core/cpu/cpu_features.h"

#include <cpuid.h>

#include <cstdlib>
#include <cstring>
#include <fstream>

namespace rt {

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = [] {
    CpuFeatures f;
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    __cpuid(0, eax, ebx, ecx, edx);
    f.amd = ebx == 0x68747541u && edx == 0x69746e65u && ecx == 0x444d4163u;  // "Auth" "enti" "cAMD"
    if (__get_cpuid_max(0, nullptr) < 7) return f;
    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    f.amx_bf16 = (edx >> 22) & 1u;
    const unsigned max_subleaf = eax;
    if (max_subleaf >= 1) {
      __cpuid_count(7, 1, eax, ebx, ecx, edx);
      f.avx512_bf16 = (eax >> 5) & 1u;
    }
    if (const char* cap = std::getenv("RINGTRAIN_MAX_CPU_ISA")) {
      if (std::strcmp(cap, "AVX512_CORE") == 0 || std::strcmp(cap, "AVX2") == 0) f.avx512_bf16 = f.amx_bf16 = false;
      if (std::strcmp(cap, "AVX512_CORE_BF16") == 0) f.amx_bf16 = false;
    }
    return f;
  }();
  return features;
}

std::string cpu_bf16_description() {
  const CpuFeatures& f = cpu_features();
  if (f.amx_bf16 && f.avx512_bf16) return "AMX-BF16 and AVX512-BF16";
  if (f.amx_bf16) return "AMX-BF16";
  return f.avx512_bf16 ? "AVX512-BF16" : "";
}

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line, name = "unknown", family, model;
  while (std::getline(in, line)) {
    auto value = [&] { return line.substr(line.find(':') + 2); };
    if (line.rfind("model name", 0) == 0 && name == "unknown") name = value();
    if (line.rfind("cpu family", 0) == 0 && family.empty()) family = value();
    if (line.rfind("model\t", 0) == 0 && model.empty()) model = value();
  }
  return name + " (family " + family + " model " + model + ")";
}

}  // namespace rt
