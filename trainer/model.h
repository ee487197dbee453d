// The Llama-style decoder: embedding, pre-norm blocks (attention + SwiGLU MLP), final norm, tied or untied head.
#pragma once
#include <functional>
#include <memory>
#include <vector>

#include "attention/attention_layer.h"
#include "core/backend.h"
#include "trainer/config.h"
#include "trainer/parameters.h"

namespace rt {

// One micro-batch on this rank: B sequences of T local tokens each, N = B*T, flattened row-major.
struct Batch {
  int64_t batch = 0, seq = 0;
  Tensor tokens;  // (N) i32
  Tensor labels;  // (N) i32, negative = not trained on
  Tensor pos;     // (N) i32 RoPE positions: global positions, or positions within each document (data.reset_positions)
  Tensor doc_start;  // (N) i32 where each token's document starts in its sequence (data.document_mask); undefined:
                     // each sequence is one document
};

// The RoPE of a model config (model.rope_theta and model.rope_scaling, HF's defaults resolved) for sequences of
// seq_len tokens (the global length: rope_type dynamic scales its base for it, the other types ignore it).
RopeParams rope_params_of(const ModelConfig& config, int64_t seq_len);

class LlamaModel {
 public:
  // precision: of the linear layers' GEMMs (forward and backward); everything else, and the parameters, stay fp32.
  // seq_len: the global length of the sequences it will see (rope_params_of; only rope_type dynamic needs it).
  LlamaModel(const ModelConfig& config, Backend& backend, SequenceAttention& attention,
             Precision precision = Precision::fp32, int64_t seq_len = 0);
  ~LlamaModel();

  // Activation recomputation: with `full`, each layer keeps only its input through the forward and recomputes its
  // forward inside the backward (one layer's activations at a time); the gradients are bit-identical to `none`.
  void set_recompute(bool full);
  // Bytes one token's saved forward state takes (everything activations_ensure allocates, per token).
  int64_t activation_bytes_per_token(int64_t batch, int64_t seq);

  Parameters& params() { return params_; }
  const ModelConfig& config() const { return config_; }

  // Normal(0, initializer_range) matrices (output projections scaled by 1/sqrt(2 layers); the token embedding
  // model.embedding_init_std when set), unit norm gains.
  // Deterministic in (seed, parameter name): the same on any number of ranks.
  void init_weights(uint64_t seed);

  // Forward only: per-token losses (N), 0 where the label is ignored; hits (N), when given: 1 where the label is the
  // argmax of the logits (exact match), else 0.
  void forward(const Batch& batch, Tensor& losses, Tensor* hits = nullptr);
  // Forward only: logits (B, V) of each sequence's token at `row` of its batch.seq rows (-1: its last; sampling;
  // labels are not read).
  void forward_logits(const Batch& batch, Tensor& logits, int64_t row = -1);
  // Forward and backward: per-token losses (N); gradients of loss_scale * sum(losses) are added to
  // params().grads() (+=, so micro-batches accumulate). ready, when given, is called as each stretch [begin, end) of
  // params().grads() (elements) has received this call's last contribution: the final norm and the head, then each
  // layer from the last, then the embedding (parallel/gradient_reducer.h posts their all-reduce).
  using GradientsReady = std::function<void(int64_t begin, int64_t end)>;
  void forward_backward(const Batch& batch, float loss_scale, Tensor& losses, const GradientsReady& ready = {});

  // Floating-point operations of one forward+backward over N tokens of sequences of length T (matmuls and
  // causal attention; 6 per parameter-token, attention per FlashAttention's convention).
  double flops_per_step(int64_t tokens, int64_t seq) const;

 private:
  struct Layer;
  struct Activations;
  void forward_impl(const Batch& batch, Tensor& losses, float loss_scale, bool backward, Tensor* hits = nullptr);
  void trunk_forward(const Batch& batch);  // embedding, the layers and the final norm: act_->hf
  void layer_forward(size_t l, const Batch& batch, bool write_output);
  void activations_ensure(int64_t batch, int64_t seq);
  size_t slot(size_t l) const { return recompute_ ? 0 : l; }  // where layer l's activations live

  ModelConfig config_;
  Backend& backend_;
  Precision precision_;
  Parameters params_;
  std::unique_ptr<AttentionLayer> attention_;
  std::vector<Layer> layers_;
  std::unique_ptr<Activations> act_;
  bool recompute_ = false;
  size_t embed_ = 0, final_norm_ = 0, head_ = 0;  // parameter indices
};

}  // namespace rt
