// Flash attention with an explicit tile-GEMM implementation and tile sizes, for tests and benchmarks.
#pragma once
#include <cstdint>

#include "attention/attention_kernels.h"

namespace rt {

// Which tile GEMM runs inside the flash kernels. kAuto is what attention_flash_* use: the fastest measured for the
// head dim (flash_tiles.h, default_gemm_is_onednn).
// kBf16 rounds the tiles' inputs (Q, K, V, dO, and P, dS as they enter their products) to bf16; kAuto picks it
// when the problem asks for bf16 inputs (AttentionProblem::bf16_inputs).
enum class FlashGemm { kAuto, kAvx512, kPortable, kOneDnn, kBf16 };

struct FlashOptions {
  FlashGemm gemm = FlashGemm::kAuto;
  int64_t block_q = 0;  // query rows per tile; 0: default
  int64_t block_k = 0;  // keys per tile, a multiple of 16; 0: default
};

// True when this build has the AVX-512 microkernels (compiled with __AVX512F__); otherwise kAvx512 runs the
// portable kernels.
bool flash_avx512_compiled();
// True when kBf16 runs on AVX512-BF16 instructions here (else it multiplies the rounded values in fp32).
bool flash_bf16_native();
bool flash_bf16_amx();  // ... and on AMX tiles

void attention_flash_forward_with(const FlashOptions& opt, const AttentionProblem& p, const float* q, const float* k,
                                  const float* v, float* o, float* lse);
void attention_flash_backward_with(const FlashOptions& opt, const AttentionProblem& p, const float* q, const float* k,
                                   const float* v, const float* dout, const float* lse, const float* delta, float* dq,
                                   float* dk, float* dv);

}  // namespace rt
