// The step-time model: FLOPs over the cluster file's rates, bytes over its links and memory bandwidth, the ring's
// exchange against the compute of each ring step (what the compute does not cover is exposed).
#include "planner/time_model.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"
#include "planner/memory_model.h"

namespace rt {

namespace {

double rate(const Measured& tflops, double cores) { return tflops.value * 1e12 * cores; }
double seconds(const LinkSpec& link, double bytes) {
  return link.latency_us.value * 1e-6 + bytes / (link.bandwidth_gbs.value * 1e9);
}

struct Dims {
  double C, D, Hq, Hk, I, V, L;
  double hq_inner, hk_inner;  // heads the kernel sees (Ulysses shares them out)
};
Dims dims_of(const PlanLayout& l) {
  const ModelConfig& m = l.model;
  const int64_t u = l.ulysses, hk = m.num_key_value_heads;
  return {static_cast<double>(m.hidden_size),         static_cast<double>(m.head_dim()),
          static_cast<double>(m.num_attention_heads), static_cast<double>(hk),
          static_cast<double>(m.intermediate_size),   static_cast<double>(m.vocab_size),
          static_cast<double>(m.num_hidden_layers),   static_cast<double>(m.num_attention_heads / u),
          static_cast<double>(u <= hk ? hk / u : 1)};
}

// Linear-layer weights one token multiplies by in one layer, and in the head.
double layer_matmul_params(const Dims& d) {
  return d.C * (d.Hq * d.D + 2 * d.Hk * d.D) + d.Hq * d.D * d.C + 3 * d.C * d.I;
}

}  // namespace

PlanPlacement plan_placement(const PlanLayout& l, const ClusterSpec& c, int64_t threads) {
  PlanPlacement p;
  const int64_t ranks = l.ranks();
  const int64_t capacity = c.nodes * c.devices_per_node;
  // GPUs take one rank each; CPU nodes may hold more ranks than cores (mpirun --oversubscribe), which share them.
  if (ranks > capacity && c.kind == "cuda")
    throw UserError("the layout needs " + std::to_string(ranks) + " ranks but cluster '" + c.name + "' has " +
                    std::to_string(capacity) + " devices (" + std::to_string(c.nodes) + " nodes x " +
                    std::to_string(c.devices_per_node) + "); choose cp * dp * ulysses <= " + std::to_string(capacity));
  p.ranks_per_node = ranks <= capacity ? std::min(ranks, c.devices_per_node) : (ranks + c.nodes - 1) / c.nodes;
  p.nodes = (ranks + p.ranks_per_node - 1) / p.ranks_per_node;
  const double share = static_cast<double>(c.devices_per_node) / static_cast<double>(p.ranks_per_node);
  p.cores_per_rank = c.kind == "cuda" ? 1
                     : threads > 0    ? threads
                                      : std::max<int64_t>(1, c.devices_per_node / p.ranks_per_node);
  // A rank of several threads gets a little less per core than 1-thread ranks do (the cluster's thread_efficiency).
  const double threaded = p.cores_per_rank > 1 ? c.thread_efficiency.value : 1.0;
  p.compute_cores = c.kind == "cuda" ? 1 : std::min(static_cast<double>(p.cores_per_rank), share) * threaded;
  p.ring_crosses_nodes = l.cp > 1 && l.cp * l.ulysses > p.ranks_per_node;
  p.ulysses_crosses_nodes = l.ulysses > p.ranks_per_node;
  return p;
}

StepWork plan_step_work(const PlanLayout& l) {
  StepWork w;
  const Dims d = dims_of(l);
  const double T = static_cast<double>(l.tokens_per_rank()), micro = static_cast<double>(l.micro_batch);
  const double N = micro * T, M = static_cast<double>(l.micro_steps());
  const double S = static_cast<double>(l.seq_len), U = static_cast<double>(l.ulysses);
  const double cp = static_cast<double>(l.cp), recomputed = l.recompute ? d.L - 1 : 0;  // layers run forward twice

  // GEMMs: 2 FLOPs per weight-token forward, 4 backward, and the recomputed layers' forward again.
  const double lp = layer_matmul_params(d), head = d.V * d.C;
  w.gemm_flops = M * N * (6 * (d.L * lp + head) + 2 * recomputed * lp);

  // Causal attention of one sequence and layer: 2 S^2 D Hq forward (4 S^2 D Hq / 2), 2.5x that backward, shared by
  // the sequence's ranks (zigzag balances them; contiguous leaves the last ring rank (2cp-1)/cp^2 of it).
  const double share = l.cp > 1 && !l.zigzag ? (2 * cp - 1) / (cp * cp) / U : 1.0 / (cp * U);
  const double fwd_layer = 2 * S * S * d.D * d.Hq * share;
  w.attention_flops = M * micro * ((d.L + recomputed) * fwd_layer + d.L * 2.5 * fwd_layer);

  // Elementwise work, fp32 bytes read and written per token: per layer forward (2 norms, 2 residual copies, RoPE,
  // SwiGLU) and backward (their gradients, 2 residual adds), the ring's merges; the loss over the vocabulary.
  const double layer_fwd = 8 * d.C + 2 * (d.Hq + d.Hk) * d.D + 3 * d.I + (l.cp > 1 ? 3 * cp * d.Hq * d.D : 0);
  const double layer_bwd =
      12 * d.C + 2 * (d.Hq + d.Hk) * d.D + 5 * d.I + 3 * d.Hq * d.D + (l.cp > 1 ? 3 * cp * 2 * d.Hk * d.D : 0);
  const double per_token = (d.L + recomputed) * layer_fwd + d.L * layer_bwd + 3 * d.V + 8 * d.C;
  w.elementwise_bytes = M * N * per_token * 4;
  // Zero the gradients, their norm, AdamW (read p, g, m, v; write p, m, v): 9 fp32 passes over the parameters.
  w.optimizer_bytes = static_cast<double>(plan_parameter_count(l.model)) * 4 * 9;
  return w;
}

StepTimePlan plan_step_time(const PlanLayout& l, const ClusterSpec& c, const PlanPlacement& p) {
  StepTimePlan t;
  const Dims d = dims_of(l);
  const StepWork w = plan_step_work(l);
  const double T = static_cast<double>(l.tokens_per_rank()), micro = static_cast<double>(l.micro_batch);
  const double M = static_cast<double>(l.micro_steps());
  const double S = static_cast<double>(l.seq_len), U = static_cast<double>(l.ulysses);
  const double cp = static_cast<double>(l.cp), recomputed = l.recompute ? d.L - 1 : 0;  // layers run forward twice
  const double cores = p.compute_cores;
  const double gemm_rate = rate(l.bf16 ? c.gemm_tflops_bf16 : c.gemm_tflops_fp32, cores);
  const double attention_rate = rate(l.bf16 ? c.attention_tflops_bf16 : c.attention_tflops_fp32, cores);
  const double bandwidth = c.memory_bandwidth_gbs.value * 1e9 / (c.kind == "cpu" ? p.ranks_per_node : 1);

  const double lp = layer_matmul_params(d), head = d.V * d.C;
  t.gemm_s = w.gemm_flops / gemm_rate;
  t.attention_s = w.attention_flops / attention_rate;
  const double fwd_layer = t.attention_s / (M * micro * (d.L + recomputed + 2.5 * d.L));  // s, one sequence, layer

  double ring_backward_link_s = 0;  // the ring's transfers during one micro-batch's backward
  // The ring: cp steps per layer; a step's exchange runs while its compute does.
  if (l.cp > 1) {
    const LinkSpec& link = p.ring_crosses_nodes ? c.inter_node : c.intra_node;
    t.ring_link = p.ring_crosses_nodes ? "inter_node" : "intra_node";
    const double Tr = T * U, kv_bytes = 2 * Tr * d.hk_inner * d.D * (l.bf16 ? 2 : 4),
                 grad_bytes = 2 * Tr * d.hk_inner * d.D * 4;
    const double kv_s = seconds(link, kv_bytes), grad_s = seconds(link, grad_bytes);
    const double step_f = fwd_layer / cp, step_b = 2.5 * fwd_layer / cp;
    t.ring_step_compute_s = step_f;
    t.ring_step_comm_s = kv_s;
    const double forward_comm = (cp - 1) * kv_s, forward_exposed = (cp - 1) * std::max(0.0, kv_s - step_f);
    const double backward_comm = (cp - 1) * kv_s + cp * grad_s;
    const double backward_exposed = (cp - 1) * std::max(0.0, kv_s + grad_s - step_b) + grad_s;  // + the delivery
    const double layers_f = d.L + recomputed;
    t.ring_comm_s = M * micro * (layers_f * forward_comm + d.L * backward_comm);
    ring_backward_link_s = micro * d.L * backward_comm;  // of one micro-batch
    t.ring_exposed_s = M * micro * (layers_f * forward_exposed + d.L * backward_exposed);
    t.ring_delivery_s = M * micro * d.L * grad_s;
  }

  // Ulysses: per layer, Q/K/V out and O back (forward), Q/K/V/O/dO out and dQ/dK/dV back (backward), fp32; each rank
  // keeps 1/U of what it sends. Not overlapped.
  if (l.ulysses > 1) {
    const LinkSpec& link = p.ulysses_crosses_nodes ? c.inter_node : c.intra_node;
    const double q = T * d.Hq * d.D * 4, kv = T * d.hk_inner * U * d.D * 4, lse = d.Hq * T * 4;
    const double keep = (U - 1) / U;
    const double fwd_bytes = keep * (2 * q + 2 * kv + lse + (l.document_mask ? U * T * 4 : 0));
    const double bwd_bytes = keep * (4 * q + 4 * kv + lse + (l.document_mask ? U * T * 4 : 0));
    const double calls_f = l.document_mask ? 6 : 5, calls_b = l.document_mask ? 10 : 9;
    const double lat = link.latency_us.value * 1e-6 * (U - 1), bw = link.bandwidth_gbs.value * 1e9;
    const double f = fwd_bytes / bw + calls_f * lat, b = bwd_bytes / bw + calls_b * lat;
    t.all_to_all_s = M * micro * ((d.L + recomputed) * f + d.L * b);
  }

  t.elementwise_s = w.elementwise_bytes / bandwidth;

  // Gradients: a ring all-reduce over every rank, hidden behind the last micro-batch's backward where a thread runs
  // it (CPU ranks); GPU gradients are reduced after the backward.
  const double ranks = static_cast<double>(l.ranks());
  const double P = static_cast<double>(plan_parameter_count(l.model));
  if (l.ranks() > 1) {
    const LinkSpec& link = p.nodes > 1 ? c.inter_node : c.intra_node;
    t.all_reduce_s = 2 * (ranks - 1) / ranks * P * 4 / (link.bandwidth_gbs.value * 1e9) +
                     2 * (ranks - 1) * link.latency_us.value * 1e-6;
    const double backward = (t.gemm_s * 4 / 6 + t.attention_s * 2.5 / 3.5) / M;
    // The backward's ring transfers take the same link when the ring and the all-reduce cross the same one.
    const bool same_link = l.cp > 1 && p.ring_crosses_nodes == (p.nodes > 1);
    const double window = std::max(0.0, backward - (same_link ? ring_backward_link_s : 0.0));
    const double last_bucket = t.all_reduce_s * head / P;  // the embedding, reduced after the backward ends
    t.all_reduce_exposed_s = c.kind == "cuda" ? t.all_reduce_s : std::max(last_bucket, t.all_reduce_s - window);
  }
  t.optimizer_s = w.optimizer_bytes / bandwidth;

  t.step_s = t.gemm_s + t.attention_s + t.elementwise_s + t.ring_exposed_s + t.all_to_all_s + t.all_reduce_exposed_s +
             t.optimizer_s;
  const double tokens = static_cast<double>(l.batch_size) * S;
  t.tokens_per_s = tokens / t.step_s;
  t.model_flops = tokens * (6 * (d.L * lp + head) + d.L * 3.5 * 2 * S * d.D * d.Hq);
  t.flop_utilisation = t.model_flops / t.step_s / (ranks * gemm_rate);
  return t;
}

int64_t plan_ring_min_tokens(const PlanLayout& l, const ClusterSpec& c, const LinkSpec& link, double cores) {
  const Dims d = dims_of(l);
  const double F = rate(l.bf16 ? c.attention_tflops_bf16 : c.attention_tflops_fp32, cores);
  const double B = link.bandwidth_gbs.value * 1e9, lat = link.latency_us.value * 1e-6;
  const double e = l.bf16 ? 2 : 4;
  // A ring step over Tr tokens per block: forward 2 Tr^2 D hq / F against lat + 2 Tr hk D e / B; backward 2.5x the
  // compute against the K/V block and the fp32 dK/dV block together. The smallest Tr meeting both.
  auto smallest = [](double a, double b, double c0) { return (b + std::sqrt(b * b + 4 * a * c0)) / (2 * a); };
  const double a = 2 * d.D * d.hq_inner / F;
  const double forward = smallest(a, 2 * d.hk_inner * d.D * e / B, lat);
  const double backward = smallest(2.5 * a, 2 * d.hk_inner * d.D * (e + 4) / B, 2 * lat);
  return static_cast<int64_t>(std::ceil(std::max(forward, backward) / static_cast<double>(l.ulysses)));
}

}  // namespace rt
