// What this CPU can do beyond AVX-512F, read once from cpuid: the bf16 instructions a bf16 GEMM can use.
#pragma once
#include <string>

namespace rt {

struct CpuFeatures {
  bool amd = false;          // vendor AuthenticAMD
  bool avx512_bf16 = false;  // vdpbf16ps, vcvtne2ps2bf16 (Zen 4/5, Cooper Lake, Sapphire Rapids)
  bool amx_bf16 = false;     // AMX tiles with bf16 tdpbf16ps (Sapphire Rapids and later)
};
// Read once. RINGTRAIN_MAX_CPU_ISA=AVX512_CORE or AVX2 (as oneDNN's ONEDNN_MAX_CPU_ISA) hides the bf16 instructions,
// AVX512_CORE_BF16 hides AMX, so that a CPU which has them can run, and test, the code other CPUs take.
const CpuFeatures& cpu_features();

// "AMX-BF16 and AVX512-BF16", "AVX512-BF16", or "" when the CPU has no bf16 instructions.
std::string cpu_bf16_description();

// "AMD EPYC (family 26 model 2)": /proc/cpuinfo's model name, family and model, for the host line of every table.
std::string cpu_model_name();

}  // namespace rt
