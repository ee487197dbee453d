// The attention kernel API: one (query block, key/value block) pair (a ring step, a whole local sequence, a decode step).
#pragma once
#include <cstdint>

namespace rt {

// One block pair. Queries are rows [q_offset, q_offset + Tq) of the global sequence, keys/values rows
// [k_offset, k_offset + Tk). Query head h reads key/value head h / (Hq / Hk) (GQA without copies).
struct AttentionProblem {
  int64_t Tq = 0, Tk = 0;   // block lengths
  int64_t Hq = 0, Hk = 0;   // query heads, key/value heads (Hq % Hk == 0)
  int64_t D = 0;            // head dim
  bool causal = true;       // key j visible to query i iff k_offset + j <= q_offset + i
  int64_t q_offset = 0, k_offset = 0;
  float scale = 0;          // softmax scale, usually 1/sqrt(D)
  // Round Q, K, V, dO and the softmax's P and dS to bf16 where they enter a tile product, sums and softmax in fp32
  // (train.precision = bf16; the CPU flash kernels' FlashGemm::kBf16). The CUDA kernels always do.
  bool bf16_inputs = false;
  // Document masking (packed documents): q_doc_start[i] is the global position where query i's document starts, and
  // key j is visible to query i only if k_offset + j >= q_doc_start[i] (on top of the causal rule), so attention is
  // block-diagonal over the documents. Non-decreasing in i (documents are contiguous); in the device's memory, Tq
  // entries. nullptr: the whole sequence is one document.
  const int32_t* q_doc_start = nullptr;
};

// Reference kernels (fp32, materialise one block of scores at a time). Layouts:
//   q, o, dq: (Tq, Hq, D) row-major; k, v, dk, dv: (Tk, Hk, D); lse: (Hq, Tq).
// Rows that see no key get o = 0 and lse = -inf.
void attention_reference_forward(const AttentionProblem& p, const float* q, const float* k, const float* v, float* o,
                                 float* lse);
// Recomputes P = exp(S - lse) from the given lse; accumulates into dq, dk, dv (+=).
void attention_reference_backward(const AttentionProblem& p, const float* q, const float* k, const float* v,
                                  const float* o, const float* dout, const float* lse, float* dq, float* dk, float* dv);

// Flash attention (attention/cpu/flash_*.cpp): online softmax over key/value tiles, never holding more than
// one tile of scores per thread; the extra memory is O(T*D). Same layouts and masking as the reference.
// Tiles entirely above the causal diagonal are skipped; tiles entirely below it pay no masking cost.
void attention_flash_forward(const AttentionProblem& p, const float* q, const float* k, const float* v, float* o,
                             float* lse);
// delta (Hq,Tq) = rowsum(dout * o) over D: computed once from the final (global) o, as ring attention needs.
void attention_delta(const AttentionProblem& p, const float* o, const float* dout, float* delta);
// FlashAttention-2 backward: recomputes P = exp(S - lse) from the given (global) lse, dS = P * (dP - delta);
// accumulates into dq, dk, dv (+=).
void attention_flash_backward(const AttentionProblem& p, const float* q, const float* k, const float* v,
                              const float* dout, const float* lse, const float* delta, float* dq, float* dk,
                              float* dv);

// Decode attention (attention/cpu/decode_attention.cpp): a few query rows, typically the one new token of
// autoregressive decoding, against a long key/value cache: the keys are split into blocks across threads and the
// blocks' partial softmax results merged by their log-sum-exp. Same layouts and masking as the flash forward; fp32.
void attention_decode(const AttentionProblem& p, const float* q, const float* k, const float* v, float* o, float* lse);

}  // namespace rt
