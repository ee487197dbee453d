// The per-rank memory model: the tensors of parameters, optimizer, activations, attention, ring and Ulysses buffers,
// each written as the code that allocates it does (the file and the buffer named beside each line).
#include "planner/memory_model.h"

#include <algorithm>
#include <initializer_list>

namespace rt {

namespace {

// A CPU tensor: numel elements of `elem` bytes, rounded up to 64 (core/cpu/cpu_backend.cpp, alloc).
int64_t tensor(int64_t numel, int64_t elem = 4) { return std::max<int64_t>((numel * elem + 63) / 64 * 64, 64); }
// A flash kernel buffer of n floats (attention/cpu/flash_tiles.h, AlignedBuf).
int64_t aligned(int64_t n) { return (std::max<int64_t>(n, 16) * 4 + 63) / 64 * 64; }
int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t max_of(std::initializer_list<int64_t> v) { return std::max(v); }

// The heads one rank's attention kernel sees: all of them, or with Ulysses its share (parallel/ulysses_attention.cpp,
// ulysses_heads: K/V heads repeated when ulysses exceeds them).
struct Heads {
  int64_t q, kv;
};
Heads inner_heads(const PlanLayout& l) {
  const int64_t hq = l.model.num_attention_heads, hk = l.model.num_key_value_heads, u = l.ulysses;
  return {hq / u, u <= hk ? hk / u : 1};
}

// Flash kernels' grow-only workspaces for calls of Tq queries against Tk keys (attention/cpu/flash_forward.cpp and
// flash_backward.cpp): packed K and V tiles, head-major Q and dO, one dQ per thread; and the backward's tiles per
// thread, held while it runs. Tile edge: attention/cpu/flash_tiles.h, default_block.
int64_t flash_scratch(int64_t Tq, int64_t Tk, Heads h, int64_t D, int64_t threads) {
  const int64_t B = std::max(Tq, Tk) <= 2048 ? 64 : 128;
  const int64_t packed = aligned(h.kv * ceil_div(Tk, B) * D * B);
  const int64_t rows = aligned(Tq * h.q * D);
  const int64_t tiles = 5 * aligned(D * B) + 2 * aligned(B * B);
  return 2 * packed + (2 + threads) * rows + threads * tiles;
}

}  // namespace

int64_t MemoryPlan::tensors() const {
  int64_t sum = 0;
  for (const MemoryTerm& t : terms) sum += t.bytes;
  return sum;
}

int64_t MemoryPlan::term(const std::string& name) const {
  for (const MemoryTerm& t : terms)
    if (t.name == name) return t.bytes;
  return 0;
}

int64_t plan_parameter_count(const ModelConfig& m) {
  const int64_t C = m.hidden_size, D = m.head_dim(), Hq = m.num_attention_heads, Hk = m.num_key_value_heads;
  const int64_t per_layer = 2 * C + C * Hq * D + 2 * C * Hk * D + Hq * D * C + 3 * C * m.intermediate_size;
  return m.vocab_size * C * (m.tie_word_embeddings ? 1 : 2) + m.num_hidden_layers * per_layer + C;
}

MemoryPlan plan_memory(const PlanLayout& l, int64_t runtime_overhead_bytes) {
  const ModelConfig& m = l.model;
  const int64_t C = m.hidden_size, D = m.head_dim(), Hq = m.num_attention_heads, Hk = m.num_key_value_heads;
  const int64_t I = m.intermediate_size, V = m.vocab_size, L = m.num_hidden_layers;
  const int64_t T = l.tokens_per_rank(), N = l.micro_batch * T;  // one sequence's local tokens; a micro-batch's
  const int64_t P = plan_parameter_count(m);
  const int64_t slots = l.recompute ? 1 : L;
  MemoryPlan plan;
  plan.runtime_overhead = runtime_overhead_bytes;
  auto add = [&](const char* name, int64_t bytes, const char* what) { plan.terms.push_back({name, bytes, what}); };

  // trainer/parameters.cpp, trainer/optimizer.cpp: one flat fp32 array each.
  add("parameters", tensor(P), "fp32 weights, one flat array");
  add("gradients", tensor(P), "fp32, accumulated over micro-batches and all-reduced in place");
  add("optimizer", 2 * tensor(P), "AdamW first and second moments, fp32");

  // trainer/model.cpp, activations_ensure; attention/attention_layer.cpp, activations_alloc.
  const int64_t per_slot = 3 * tensor(N * C) + 2 * tensor(N) + 3 * tensor(N * I) + 2 * tensor(N * Hq * D) +
                           2 * tensor(N * Hk * D) + tensor(N * Hq);
  add("activations", (L + 1) * tensor(N * C) + slots * per_slot,
      l.recompute ? "each layer's input, and one layer's forward state (recompute full)"
                  : "each layer's input and forward state (norms, SwiGLU, Q/K/V/O, LSE)");
  // The final norm, the loss's logits chunk and LSE, dx/dtmp/dact; the attention layer's d_o, dq, dk, dv.
  add("backward",
      tensor(N * C) + tensor(N) + tensor(std::min<int64_t>(N, 4096) * V) + tensor(N) + 2 * tensor(N * C) +
          tensor(N * I) + 2 * tensor(N * Hq * D) + 2 * tensor(N * Hk * D),
      "final norm, logits of 4096 tokens at a time, dx, dtmp, dact, attention d_o/dq/dk/dv");

  // The kernel one rank runs: the whole sequence's local part at cp 1 (local attention), else chunk pairs of the
  // ring; Ulysses hands it U times the tokens and 1/U of the heads.
  const Heads h = inner_heads(l);
  const int64_t Ti = T * l.ulysses;  // tokens the inner attention sees per sequence
  const bool ring = l.cp > 1;
  const int64_t chunk = ring && l.zigzag ? Ti / 2 : Ti;
  int64_t attention = flash_scratch(chunk, chunk, h, D, l.threads);
  if (!ring) attention += tensor(h.q * Ti);  // attention/local_attention.cpp: delta_
  add("attention_scratch", attention, "flash kernels' packed K/V, head-major Q/dO, per-thread dQ and tiles");

  int64_t ring_bytes = 0;
  if (ring) {  // parallel/ring_attention.cpp: scratch slots, and the backward's per-chunk lse/delta copies
    const int64_t kv = 2 * Ti * h.kv * D;
    ring_bytes = 2 * tensor(kv, l.bf16 ? 2 : 4) + (l.bf16 ? tensor(kv) : 0) + tensor(Ti * h.q * D) +
                 2 * tensor(h.q * Ti) + 4 * tensor(kv) + (l.zigzag ? 4 * tensor(h.q * chunk) : 2 * tensor(h.q * Ti));
  }
  add("ring_buffers", ring_bytes, "K/V blocks held and arriving, dK/dV travelling (fp32), block O/LSE, delta");

  int64_t a2a = 0;
  if (l.ulysses > 1) {  // parallel/ulysses_attention.cpp: slots kSend .. kDv, each grown to its largest use
    const int64_t U = l.ulysses, q = U * T * h.q * D, kv = U * T * h.kv * D;
    const int64_t send = tensor(max_of({q, kv, U * h.q * T}));
    a2a =
        2 * send + 4 * tensor(q) + 4 * tensor(kv) + tensor(h.q * U * T) + (l.document_mask ? 2 * tensor(U * T, 4) : 0);
  }
  add("all_to_all_buffers", a2a, "Ulysses send/receive and head-sharded Q/K/V/O/dO/dQ/dK/dV");

  int64_t staging = 0;
  if (l.bf16 && !l.cuda) {  // core/cpu/gemm_bf16.cpp: bf16 (or rounded fp32) copies of the largest A and B, held
    const int64_t rows = std::min<int64_t>(N, 4096);
    const int64_t a = max_of({N * C, N * Hq * D, N * I, rows * V});
    const int64_t b = max_of({Hq * D * C, I * C, V * C, rows * C, N * I, N * Hq * D, N * C});
    staging = l.bf16_staging_bytes * (a + b);
  }
  add("gemm_staging", staging, "bf16 copies of the GEMM inputs");

  // trainer/train_loop.cpp: tokens, labels, positions (and document starts) i32, per-token losses.
  add("batch", (l.document_mask ? 5 : 4) * tensor(N), "tokens, labels, positions, losses");
  return plan;
}

}  // namespace rt
