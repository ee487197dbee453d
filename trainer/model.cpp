// The Llama-style decoder's forward and hand-written backward, written once against the Backend.
#include "trainer/model.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/check.h"

namespace rt {

struct LlamaModel::Layer {
  size_t input_norm, q, k, v, o, post_norm, gate, up, down;  // parameter indices
};

// Saved forward state of one micro-batch (N tokens) and the backward's workspace. The per-layer vectors hold L
// entries, or one (slot 0, shared by every layer) with recomputation.
struct LlamaModel::Activations {
  int64_t batch = 0, seq = 0;
  std::vector<Tensor> x;                          // (L+1) x (N,C): input of each layer, then the final stream
  std::vector<Tensor> h1, rstd1, xm, h2, rstd2;   // (N,C) / (N)
  std::vector<Tensor> gate, up, act;              // (N,I)
  std::vector<AttentionActivations> attn;
  Tensor hf, rstdf;                               // (N,C), (N)
  Tensor logits, lse;                             // (min(N, kLossRows), V), (N): one chunk of logits at a time
  Tensor dx, dtmp, dact;                          // (N,C), (N,C), (N,I)
};

namespace {
// The loss runs over chunks of this many tokens, so the (N, V) logits never exist at once (with a 128k vocabulary
// that is 0.5 MB per token). One chunk below that: the whole batch in one GEMM.
constexpr int64_t kLossRows = 4096;
}  // namespace

namespace {

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// Standard normal samples by Box-Muller from splitmix64: the same numbers on every platform.
void fill_normal(float* out, int64_t n, float stddev, uint64_t seed) {
  uint64_t state = seed;
  for (int64_t i = 0; i < n; i += 2) {
    double u1 = (static_cast<double>(splitmix64(state) >> 11) + 1.0) * 0x1.0p-53;
    double u2 = static_cast<double>(splitmix64(state) >> 11) * 0x1.0p-53;
    double r = std::sqrt(-2.0 * std::log(u1));
    out[i] = static_cast<float>(stddev * r * std::cos(2.0 * M_PI * u2));
    if (i + 1 < n) out[i + 1] = static_cast<float>(stddev * r * std::sin(2.0 * M_PI * u2));
  }
}

AttentionWeights attention_view(const Parameters& p, size_t q, size_t k, size_t v, size_t o, bool grads) {
  auto get = [&](size_t i) { return grads ? p.grad(i) : p.value(i); };
  return {get(q), get(k), get(v), get(o)};
}

}  // namespace

RopeParams rope_params_of(const ModelConfig& c, int64_t seq_len) {
  const RopeScalingConfig& s = c.rope_scaling;
  RopeParams r;
  r.theta = c.rope_theta;
  r.type = s.rope_type == "linear"    ? RopeType::kLinear
           : s.rope_type == "dynamic" ? RopeType::kDynamic
           : s.rope_type == "yarn"    ? RopeType::kYarn
           : s.rope_type == "llama3"  ? RopeType::kLlama3
                                      : RopeType::kDefault;
  RT_CHECK(r.type != RopeType::kDefault || s.rope_type == "default", "unknown rope_type " + s.rope_type);
  r.factor = s.factor;
  r.original_max_position = static_cast<double>(s.original_max_position_embeddings);
  r.low_freq_factor = s.low_freq_factor;
  r.high_freq_factor = s.high_freq_factor;
  r.beta_fast = s.beta_fast;
  r.beta_slow = s.beta_slow;
  r.truncate = s.truncate;
  r.attention_factor =
      r.type != RopeType::kYarn ? 1.0 : s.attention_factor > 0 ? s.attention_factor : rope_yarn_mscale(s.factor);
  r.seq_len = static_cast<double>(seq_len);
  RT_CHECK(r.type != RopeType::kDynamic || seq_len > 0, "dynamic RoPE needs the sequence length it scales for");
  return r;
}

LlamaModel::LlamaModel(const ModelConfig& c, Backend& backend, SequenceAttention& attention, Precision precision,
                       int64_t seq_len)
    : config_(c), backend_(backend), precision_(precision) {
  const int64_t C = c.hidden_size, D = c.head_dim(), Hq = c.num_attention_heads, Hk = c.num_key_value_heads;
  const int64_t I = c.intermediate_size, V = c.vocab_size;
  std::vector<ParameterInfo> infos;
  auto add = [&](std::string name, std::vector<int64_t> shape, bool decay) {
    infos.push_back({std::move(name), std::move(shape), 0, decay});
    return infos.size() - 1;
  };
  embed_ = add("model.embed_tokens.weight", {V, C}, true);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    Layer layer;
    layer.input_norm = add(p + "input_layernorm.weight", {C}, false);
    layer.q = add(p + "self_attn.q_proj.weight", {Hq * D, C}, true);
    layer.k = add(p + "self_attn.k_proj.weight", {Hk * D, C}, true);
    layer.v = add(p + "self_attn.v_proj.weight", {Hk * D, C}, true);
    layer.o = add(p + "self_attn.o_proj.weight", {C, Hq * D}, true);
    layer.post_norm = add(p + "post_attention_layernorm.weight", {C}, false);
    layer.gate = add(p + "mlp.gate_proj.weight", {I, C}, true);
    layer.up = add(p + "mlp.up_proj.weight", {I, C}, true);
    layer.down = add(p + "mlp.down_proj.weight", {C, I}, true);
    layers_.push_back(layer);
  }
  final_norm_ = add("model.norm.weight", {C}, false);
  head_ = c.tie_word_embeddings ? embed_ : add("lm_head.weight", {V, C}, true);
  params_ = Parameters(backend, std::move(infos));
  AttentionShape shape{C, Hq, Hk, D, rope_params_of(c, seq_len)};
  attention_ = std::make_unique<AttentionLayer>(backend, attention, shape, precision);
}

LlamaModel::~LlamaModel() = default;

void LlamaModel::set_recompute(bool full) {
  recompute_ = full;
  act_.reset();  // allocated anew for the mode on the next batch
}

void LlamaModel::init_weights(uint64_t seed) {
  const double std = config_.initializer_range;
  const double std_out = std / std::sqrt(2.0 * config_.num_hidden_layers);
  const double std_embedding = config_.embedding_init_std > 0 ? config_.embedding_init_std : std;
  for (size_t i = 0; i < params_.infos().size(); ++i) {
    const ParameterInfo& info = params_.infos()[i];
    Tensor t = params_.value(i);
    std::vector<float> host(static_cast<size_t>(t.numel()));
    if (info.shape.size() == 1) {
      std::fill(host.begin(), host.end(), 1.0f);
    } else {
      const bool out_proj = info.name.ends_with("o_proj.weight") || info.name.ends_with("down_proj.weight");
      const bool embedding = i == embed_;
      fill_normal(host.data(), t.numel(), static_cast<float>(embedding ? std_embedding : out_proj ? std_out : std),
                  seed ^ fnv1a(info.name));
    }
    backend_.upload(host.data(), t);
  }
}

void LlamaModel::activations_ensure(int64_t batch, int64_t seq) {
  if (act_ && act_->batch == batch && act_->seq == seq) return;
  const ModelConfig& c = config_;
  const int64_t N = batch * seq, C = c.hidden_size, I = c.intermediate_size, L = c.num_hidden_layers;
  act_ = std::make_unique<Activations>();
  Activations& a = *act_;
  a.batch = batch;
  a.seq = seq;
  for (int64_t l = 0; l <= L; ++l) a.x.push_back(backend_.alloc({N, C}));
  for (int64_t l = 0; l < (recompute_ ? 1 : L); ++l) {
    a.h1.push_back(backend_.alloc({N, C}));
    a.rstd1.push_back(backend_.alloc({N}));
    a.xm.push_back(backend_.alloc({N, C}));
    a.h2.push_back(backend_.alloc({N, C}));
    a.rstd2.push_back(backend_.alloc({N}));
    a.gate.push_back(backend_.alloc({N, I}));
    a.up.push_back(backend_.alloc({N, I}));
    a.act.push_back(backend_.alloc({N, I}));
    a.attn.push_back(attention_->activations_alloc(batch, seq));
  }
  a.hf = backend_.alloc({N, C});
  a.rstdf = backend_.alloc({N});
  a.logits = backend_.alloc({std::min(N, kLossRows), c.vocab_size});
  a.lse = backend_.alloc({N});
  a.dx = backend_.alloc({N, C});
  a.dtmp = backend_.alloc({N, C});
  a.dact = backend_.alloc({N, I});
}

// Layer l's forward from its input x[l] into its activation slot; write_output: x[l+1] too (a recomputation inside
// the backward needs everything but that).
void LlamaModel::layer_forward(size_t l, const Batch& b, bool write_output) {
  Activations& a = *act_;
  Parameters& p = params_;
  const float eps = static_cast<float>(config_.rms_norm_eps);
  const Layer& w = layers_[l];
  const size_t s = slot(l);
  backend_.rmsnorm_forward(a.x[l], p.value(w.input_norm), eps, a.h1[s], a.rstd1[s]);
  backend_.copy(a.x[l], a.xm[s]);  // xm = x + attention(norm(x))
  attention_->forward(attention_view(p, w.q, w.k, w.v, w.o, false), a.h1[s], b.pos, b.doc_start, b.batch, a.attn[s],
                      a.xm[s]);
  backend_.rmsnorm_forward(a.xm[s], p.value(w.post_norm), eps, a.h2[s], a.rstd2[s]);
  backend_.gemm(precision_, a.h2[s], false, p.value(w.gate), true, a.gate[s], 1.f, 0.f);  // (N,I)
  backend_.gemm(precision_, a.h2[s], false, p.value(w.up), true, a.up[s], 1.f, 0.f);
  backend_.swiglu_forward(a.gate[s], a.up[s], a.act[s]);
  if (!write_output) return;
  backend_.copy(a.xm[s], a.x[l + 1]);  // x' = xm + mlp(norm(xm))
  backend_.gemm(precision_, a.act[s], false, p.value(w.down), true, a.x[l + 1], 1.f, 1.f);
}

// The forward, and the loss over chunks of kLossRows tokens: logits = hf @ head^T, cross entropy, and with `backward`
// at once its gradient into the head's (g_head +=) and into dtmp = d hf, before the next chunk reuses the logits.
void LlamaModel::trunk_forward(const Batch& b) {
  RT_CHECK(b.tokens.numel() == b.batch * b.seq, "batch shapes");
  activations_ensure(b.batch, b.seq);
  Activations& a = *act_;
  Parameters& p = params_;
  backend_.embedding_forward(b.tokens, p.value(embed_), a.x[0]);
  for (size_t l = 0; l < layers_.size(); ++l) layer_forward(l, b, true);
  backend_.rmsnorm_forward(a.x.back(), p.value(final_norm_), static_cast<float>(config_.rms_norm_eps), a.hf, a.rstdf);
}

void LlamaModel::forward_impl(const Batch& b, Tensor& losses, float loss_scale, bool backward, Tensor* hits) {
  const int64_t N = b.batch * b.seq;
  RT_CHECK(losses.numel() == N && (!hits || hits->numel() == N), "batch shapes");
  trunk_forward(b);
  Activations& a = *act_;
  Parameters& p = params_;
  Tensor g_head = p.grad(head_);
  for (int64_t r0 = 0; r0 < N; r0 += kLossRows) {
    const int64_t r1 = std::min(N, r0 + kLossRows);
    Tensor logits = a.logits.rows(0, r1 - r0), hf = a.hf.rows(r0, r1), labels = b.labels.rows(r0, r1);
    Tensor lse = a.lse.rows(r0, r1);
    backend_.gemm(precision_, hf, false, p.value(head_), true, logits, 1.f, 0.f);  // (rows,V)
    Tensor chunk_losses = losses.rows(r0, r1);
    Tensor chunk_hits = hits ? hits->rows(r0, r1) : Tensor{};
    backend_.cross_entropy_forward(logits, labels, chunk_losses, lse, hits ? &chunk_hits : nullptr);
    if (!backward) continue;
    backend_.cross_entropy_backward(logits, labels, lse, loss_scale, logits);  // logits := dlogits
    backend_.gemm(precision_, logits, true, hf, false, g_head, 1.f, 1.f);
    Tensor dhf = a.dtmp.rows(r0, r1);
    backend_.gemm(precision_, logits, false, p.value(head_), false, dhf, 1.f, 0.f);
  }
}

void LlamaModel::forward(const Batch& b, Tensor& losses, Tensor* hits) { forward_impl(b, losses, 0.f, false, hits); }

void LlamaModel::forward_logits(const Batch& b, Tensor& logits, int64_t row) {
  RT_CHECK(logits.rank() == 2 && logits.dim(0) == b.batch && logits.dim(1) == config_.vocab_size, "logits shape");
  if (row < 0) row = b.seq - 1;
  RT_CHECK(row < b.seq, "logits of row " + std::to_string(row) + " of " + std::to_string(b.seq));
  trunk_forward(b);
  for (int64_t s = 0; s < b.batch; ++s) {  // logits[s] (1,V) = hf[token `row` of s] @ head^T
    Tensor out = logits.rows(s, s + 1);
    const int64_t r = s * b.seq + row;
    backend_.gemm(precision_, act_->hf.rows(r, r + 1), false, params_.value(head_), true, out, 1.f, 0.f);
  }
}

void LlamaModel::forward_backward(const Batch& b, float loss_scale, Tensor& losses, const GradientsReady& ready) {
  forward_impl(b, losses, loss_scale, true);  // the head's backward included: dtmp = d hf
  Activations& a = *act_;
  Parameters& p = params_;
  Tensor g_final = p.grad(final_norm_);
  backend_.rmsnorm_backward(a.dtmp, a.x.back(), p.value(final_norm_), a.rstdf, a.dx, g_final);
  // Layer l's parameters are [its input norm, the next layer's input norm or the final norm); the final norm and an
  // untied head come last, the embedding first (the constructor's order).
  auto first_of = [&](size_t l) { return p.infos()[l < layers_.size() ? layers_[l].input_norm : final_norm_].offset; };
  if (ready) ready(first_of(layers_.size()), p.count());
  for (size_t l = layers_.size(); l-- > 0;) {
    const Layer& w = layers_[l];
    // With recomputation the slot holds the last layer's forward; every other layer's is recomputed from x[l].
    if (recompute_ && l + 1 < layers_.size()) layer_forward(l, b, false);
    const size_t s = slot(l);
    // MLP: x' = xm + act @ down^T, act = swiglu(h2 @ gate^T, h2 @ up^T), h2 = norm(xm).
    Tensor g_down = p.grad(w.down), g_gate = p.grad(w.gate), g_up = p.grad(w.up), g_post = p.grad(w.post_norm);
    backend_.gemm(precision_, a.dx, false, p.value(w.down), false, a.dact, 1.f, 0.f);  // (N,I)
    backend_.gemm(precision_, a.dx, true, a.act[s], false, g_down, 1.f, 1.f);
    backend_.swiglu_backward(a.dact, a.gate[s], a.up[s], a.gate[s], a.up[s]);  // gate, up := their grads
    backend_.gemm(precision_, a.gate[s], false, p.value(w.gate), false, a.dtmp, 1.f, 0.f);
    backend_.gemm(precision_, a.up[s], false, p.value(w.up), false, a.dtmp, 1.f, 1.f);
    backend_.gemm(precision_, a.gate[s], true, a.h2[s], false, g_gate, 1.f, 1.f);
    backend_.gemm(precision_, a.up[s], true, a.h2[s], false, g_up, 1.f, 1.f);
    backend_.rmsnorm_backward(a.dtmp, a.xm[s], p.value(w.post_norm), a.rstd2[s], a.dtmp, g_post);
    backend_.axpy(1.f, a.dtmp, a.dx);  // dx = d xm
    // Attention: xm = x + attention(h1), h1 = norm(x).
    AttentionWeights g = attention_view(p, w.q, w.k, w.v, w.o, true);
    attention_->backward(attention_view(p, w.q, w.k, w.v, w.o, false), g, a.h1[s], b.pos, b.doc_start, b.batch,
                         a.attn[s], a.dx, a.dtmp);
    Tensor g_in = p.grad(w.input_norm);
    backend_.rmsnorm_backward(a.dtmp, a.x[l], p.value(w.input_norm), a.rstd1[s], a.dtmp, g_in);
    backend_.axpy(1.f, a.dtmp, a.dx);  // dx = d x
    if (ready) ready(first_of(l), first_of(l + 1));
  }
  Tensor g_embed = p.grad(embed_);
  backend_.embedding_backward(b.tokens, a.dx, g_embed);
  if (ready) ready(0, first_of(0));
}

int64_t LlamaModel::activation_bytes_per_token(int64_t batch, int64_t seq) {
  activations_ensure(batch, seq);
  const Activations& a = *act_;
  int64_t floats = 0;
  auto add = [&](const Tensor& t) { floats += t.numel(); };
  for (const auto* v : {&a.x, &a.h1, &a.rstd1, &a.xm, &a.h2, &a.rstd2, &a.gate, &a.up, &a.act})
    for (const Tensor& t : *v) add(t);
  for (const AttentionActivations& t : a.attn)
    for (const Tensor* u : {&t.q, &t.k, &t.v, &t.o, &t.lse}) add(*u);
  for (const Tensor* t : {&a.hf, &a.rstdf, &a.logits, &a.lse, &a.dx, &a.dtmp, &a.dact}) add(*t);
  return floats * 4 / (batch * seq);
}

double LlamaModel::flops_per_step(int64_t tokens, int64_t seq) const {
  const ModelConfig& c = config_;
  const double C = c.hidden_size, D = c.head_dim(), Hq = c.num_attention_heads, Hk = c.num_key_value_heads;
  const double matmul_params =
      c.num_hidden_layers * (C * (Hq * D + 2 * Hk * D) + Hq * D * C + 3 * C * c.intermediate_size) +
      static_cast<double>(c.vocab_size) * C;
  // Causal attention per token per layer: forward 2*T*D*Hq (4*T^2*D*H / 2 over T tokens), backward 2.5x.
  const double attention = c.num_hidden_layers * 3.5 * 2.0 * seq * D * Hq;
  return tokens * (6.0 * matmul_params + attention);
}

}  // namespace rt
