// The training loop on the shared set-up (run_setup.h): gradient accumulation, global-norm clipping, AdamW, metrics,
// held-out evaluation; rank 0 logs.
#include "trainer/train_loop.h"

#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "attention/sequence_attention.h"
#include "core/check.h"
#include "core/compute_time.h"
#include "core/memory_count.h"
#include "core/timer.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "data/rank_shard.h"
#include "trainer/eval.h"
#include "trainer/metrics.h"
#include "trainer/model.h"
#include "trainer/optimizer.h"
#include "trainer/parameter_check.h"
#include "trainer/run_setup.h"
#include "trainer/stop_signal.h"
#include "trainer/tensorboard.h"
#include "trainer/train_checkpoint.h"
#include "parallel/gradient_reducer.h"
#include "parallel/mesh.h"
#include "parallel/ring_attention.h"
#include "parallel/sharding.h"
#include "parallel/topology.h"
#include "parallel/ulysses_attention.h"

namespace rt {
namespace {

void write_resolved_config(const Config& config) {
  std::filesystem::path dir(config.log.dir);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw UserError("cannot create log.dir '" + config.log.dir + "': " + ec.message());
  std::ofstream out(dir / "config.yaml");
  if (!out) throw UserError("cannot write '" + (dir / "config.yaml").string() + "'; set log.dir to a writable directory");
  out << config_to_yaml(config);
}

// One step's metrics as TensorBoard scalars under train/.
void tensorboard_scalars(TensorBoardWriter& tb, const StepMetrics& m) {
  tb.scalar("train/loss", m.step, m.loss);
  if (m.long_range_loss) tb.scalar("train/long_range_loss", m.step, *m.long_range_loss);
  tb.scalar("train/lr", m.step, m.lr);
  tb.scalar("train/grad_norm", m.step, m.grad_norm);
  tb.scalar("train/tokens_per_s", m.step, m.tokens_per_s);
  tb.scalar("train/memory_gib", m.step, m.memory_gib);
  if (m.doc_skipped) tb.scalar("train/doc_skipped_share", m.step, *m.doc_skipped);
  tb.flush();
}

// "ulysses | 4 ranks per group ...": the heads each rank computes, and what repeating K/V heads costs.
std::string ulysses_describe(const ModelConfig& mc, int ulysses) {
  const UlyssesHeads h = ulysses_heads(mc.num_attention_heads, mc.num_key_value_heads, ulysses);
  char line[512];
  int n = std::snprintf(line, sizeof line,
                        "ulysses | %d ranks per group, all-to-all over heads: each rank computes %ld of %ld query heads "
                        "and %ld of %ld K/V heads",
                        ulysses, static_cast<long>(h.q), static_cast<long>(mc.num_attention_heads),
                        static_cast<long>(h.kv), static_cast<long>(mc.num_key_value_heads));
  if (h.copies > 1)
    std::snprintf(line + n, sizeof line - static_cast<size_t>(n),
                  "; each K/V head is repeated on %ld ranks (ulysses > num_key_value_heads), so the K/V all-to-alls "
                  "carry %ldx the K/V bytes and each rank holds %ldx its share of K/V",
                  static_cast<long>(h.copies), static_cast<long>(h.copies), static_cast<long>(h.copies));
  return line;
}

// Seconds the attention layers have waited for communication: the ring's exposed exchanges, Ulysses' all-to-alls.
double communication_waited_s(const RunSetup& setup) {
  double s = 0;
  if (setup.ring) s += setup.ring->stats().wait_s + setup.ring->stats().delivery_wait_s;
  if (setup.ulysses) s += setup.ulysses->stats().all_to_all_s;
  return s;
}

// "time | per step, rank 0, median of steps 2-5: 2.611 s = gemm 0.962 + attention 1.580 + communication waits 0.000
// + other 0.069": where a CPU step's time goes (steps after the first; all of them when there is one).
std::string step_parts_describe(const std::vector<double>& seconds, const std::vector<StepParts>& parts) {
  const size_t first = seconds.size() > 1 ? 1 : 0;
  auto median = [&](auto value) {
    std::vector<double> v;
    for (size_t i = first; i < seconds.size(); ++i) v.push_back(value(i));
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
    return v[v.size() / 2];
  };
  const double step = median([&](size_t i) { return seconds[i]; });
  const double gemm = median([&](size_t i) { return parts[i].gemm_ms / 1e3; });
  const double attention = median([&](size_t i) { return parts[i].attention_ms / 1e3; });
  const double waits = median([&](size_t i) { return parts[i].comm_wait_ms / 1e3; });
  const double other = median([&](size_t i) {
    return seconds[i] - (parts[i].gemm_ms + parts[i].attention_ms + parts[i].comm_wait_ms) / 1e3;
  });
  char text[300];
  std::snprintf(text, sizeof text,
                "time | per step, rank 0, median of steps %zu-%zu: %.3f s = gemm %.3f + attention %.3f + communication "
                "waits %.3f + other %.3f",
                first + 1, seconds.size(), step, gemm, attention, waits, other);
  return text;
}

// What the attention layers sent and waited for during the training steps, for the end-of-run line: the ring's bytes
// to its neighbour and its exposed waits, Ulysses' all-to-all bytes and time (all of it exposed: nothing overlaps it).
struct CommunicationTotals {
  RingAttention::Stats ring_at_begin{};
  UlyssesAttention::Stats ulysses_at_begin{};
  double ring_wait_s = 0, all_to_all_s = 0;
  int64_t ring_bytes = 0, all_to_all_bytes = 0;

  void begin(const RunSetup& setup) {
    if (setup.ring) ring_at_begin = setup.ring->stats();
    if (setup.ulysses) ulysses_at_begin = setup.ulysses->stats();
  }
  void end(const RunSetup& setup) {
    if (setup.ring) {
      const RingAttention::Stats& r = setup.ring->stats();
      ring_bytes += r.bytes_sent - ring_at_begin.bytes_sent;
      ring_wait_s += r.wait_s + r.delivery_wait_s - ring_at_begin.wait_s - ring_at_begin.delivery_wait_s;
    }
    if (setup.ulysses) {
      const UlyssesAttention::Stats& u = setup.ulysses->stats();
      all_to_all_bytes += u.bytes_sent - ulysses_at_begin.bytes_sent;
      all_to_all_s += u.all_to_all_s - ulysses_at_begin.all_to_all_s;
    }
  }
  // "communication | per step, rank 0 sent: ring 25.2 MB (waited 0.012 s), all-to-all ..., gradients 12.3 MB"
  std::string describe(int64_t steps, int64_t gradient_bytes) const {
    const double n = static_cast<double>(steps), mb = 1e-6;
    char text[320];
    int at = std::snprintf(text, sizeof text, "communication | per step, rank 0 sent:");
    if (ring_bytes > 0)
      at += std::snprintf(text + at, sizeof text - at, " ring %.1f MB (waited %.3f s),", ring_bytes * mb / n,
                          ring_wait_s / n);
    if (all_to_all_bytes > 0)
      at += std::snprintf(text + at, sizeof text - at, " all-to-all %.1f MB (%.3f s),", all_to_all_bytes * mb / n,
                          all_to_all_s / n);
    std::snprintf(text + at, sizeof text - at, " gradients %.1f MB into the all-reduce",
                  static_cast<double>(gradient_bytes) * mb);
    return text;
  }
};

}  // namespace

namespace {

// The largest per-rank peaks of the job: tensors (memory_count, during the training steps) and resident set.
struct MemoryPeaks {
  double tensors = 0, resident = 0;
  int tensors_rank = 0;
  // "memory | per rank peak: tensors 123456789 bytes (rank 1), resident 333333333 bytes (0.31 GiB, high-water)"
  std::string describe() const {
    char text[200];
    std::snprintf(text, sizeof text,
                  "memory | per rank peak: tensors %.0f bytes (rank %d), resident %.0f bytes (%.2f GiB, high-water)",
                  tensors, tensors_rank, resident, resident / (1u << 30));
    return text;
  }
};

MemoryPeaks memory_peaks_over_ranks(Communicator& world, int64_t tensor_peak) {
  const int n = world.size(), r = world.rank();
  std::vector<double> all(2 * static_cast<size_t>(n), 0.0);  // every rank fills its own two slots
  all[2 * r] = static_cast<double>(tensor_peak);
  all[2 * r + 1] = static_cast<double>(memory_peak_bytes());
  world.all_reduce_sum(all.data(), 2 * n);
  MemoryPeaks p;
  for (int i = 0; i < n; ++i) {
    if (all[2 * i] > p.tensors) {
      p.tensors = all[2 * i];
      p.tensors_rank = i;
    }
    p.resident = std::max(p.resident, all[2 * i + 1]);
  }
  return p;
}

}  // namespace

TrainResult train_run(const Config& config, const TrainOptions& options) {
  StopSignals stop_signals;  // first, before any OpenMP thread exists (see trainer/stop_signal.h)
  RunSetup setup = run_setup_make(config);
  const Device device = setup.device;
  Mesh& mesh = setup.mesh;
  Communicator& world = *mesh.world;
  const int rank = world.rank();
  const bool log = options.print && rank == 0;
  Backend& backend = *setup.backend;
  const TrainConfig& tc = config.train;
  auto dataset = run_dataset_make(config, static_cast<uint64_t>(tc.seed));
  const bool documents = config.data.document_mask;  // attention inside each document
  // train.eval_every: held-out sequences (another seed: other draws of the synthetic tasks, other windows of a file)
  std::unique_ptr<Dataset> eval_dataset;
  if (tc.eval_every > 0) eval_dataset = run_dataset_make(config, static_cast<uint64_t>(tc.seed) + 1);
  const Sharding sharding = setup.sharding;
  const int64_t padded = setup.padded;  // what the ring carries
  const Precision precision = setup.precision;
  RingAttention* ring = setup.ring;     // its statistics: block products skipped by document masking
  LlamaModel& model = *setup.model;
  model.init_weights(static_cast<uint64_t>(tc.seed));
  parameters_check_agree(world, model.params(), 0);
  AdamW optimizer(backend, model.params(), tc);
  GradientReducer reducer(world, model.params().grads());  // all-reduced in buckets during the last backward
  TrainCheckpoints checkpoints(config, mesh, backend, model, optimizer, options.print);
  const int64_t first_step = options.resume ? checkpoints.resume(*options.resume) : 0;
  if (rank == 0) write_resolved_config(config);
  std::unique_ptr<MetricsLog> metrics;
  if (rank == 0) metrics = std::make_unique<MetricsLog>(config.log.dir, first_step);
  std::unique_ptr<TensorBoardWriter> tensorboard;  // rank 0, log.tensorboard: the same records for TensorBoard
  if (rank == 0 && config.log.tensorboard) tensorboard = std::make_unique<TensorBoardWriter>(config.log.dir);

  Loader loader(*dataset, tc.seq_len, tc.batch_size, tc.micro_batch_size, mesh.dp_rank, mesh.dp,
                config.data.reset_positions);
  const std::vector<Chunk> shard = mesh_chunks(mesh, padded, sharding);
  const int64_t micro = tc.micro_batch_size, seq_local = padded / mesh.sequence_ranks(), n_local = micro * seq_local;
  Batch batch{micro, seq_local, backend.alloc({n_local}, DType::i32), backend.alloc({n_local}, DType::i32),
              backend.alloc({n_local}, DType::i32), documents ? backend.alloc({n_local}, DType::i32) : Tensor{}};
  Tensor losses = backend.alloc({n_local});
  std::vector<float> host_losses(static_cast<size_t>(n_local));
  const double flops_per_step = model.flops_per_step(tc.batch_size * tc.seq_len, tc.seq_len);
  const double attention_flops_per_step = flops_per_step - model.flops_per_step(tc.batch_size * tc.seq_len, 0);
  const Topology topology = topology_make(world.host_names(), mesh.cp, mesh.dp, mesh.ulysses);
  if (log) {
    std::printf("ringtrain | %ld parameters | %s | seq %ld x batch %ld (micro %ld) | %d threads x %d ranks | %s | log %s\n",
                model.params().count(), dataset->describe().c_str(), tc.seq_len, tc.batch_size, micro,
                omp_get_max_threads(), world.size(), precision_text(precision, device).c_str(),
                config.log.dir.c_str());
    if (padded != tc.seq_len)
      std::printf("padding | seq_len %ld padded to %ld, a multiple of %s%s = %ld: %.2f%% of the tokens, last in each "
                  "sequence, not trained on and seen by no real token\n",
                  tc.seq_len, padded, mesh.cp == 1 ? "" : sharding == Sharding::zigzag ? "2*cp" : "cp",
                  mesh.ulysses == 1 ? "" : mesh.cp == 1 ? "ulysses" : "*ulysses",
                  shard_pieces(mesh.cp, sharding, mesh.ulysses),
                  100.0 * static_cast<double>(padded - tc.seq_len) / static_cast<double>(padded));
    std::printf("activations | %ld bytes per token on each rank (train.recompute %s)\n",
                model.activation_bytes_per_token(micro, seq_local), tc.recompute.c_str());
    std::printf("%s\n", topology_describe(topology).c_str());
    if (mesh.ulysses > 1) std::printf("%s\n", ulysses_describe(config.model, mesh.ulysses).c_str());
    const std::string warning = topology_warning(topology);
    if (!warning.empty()) std::printf("%s\n", warning.c_str());
    std::fflush(stdout);
  }

  TrainResult result;
  result.first_step = first_step;
  std::vector<double> step_seconds;
  std::vector<StepParts> step_parts;  // rank 0's, each step's (CPU)
  CommunicationTotals communication;  // of the training steps' forward/backward passes (not eval)
  int64_t tensor_peak = 0;            // bytes the tensors and kernel buffers held at once during a step
  Timer total;
  const int64_t end = options.stop_step > 0 ? std::min(options.stop_step, tc.steps) : tc.steps;
  for (int64_t step = first_step; step < end; ++step) {
    comm_step_set(step + 1);
    memory_count_reset_peak();  // the step's own high-water mark of tensors (not the checkpoints' or eval's)
    Timer timer;
    const ComputeTime compute_at_begin = compute_time();
    const double waited_at_begin = communication_waited_s(setup);
    double collectives_s = 0;  // this loop's own all-reduces: waits for the slowest rank
    backend.fill(model.params().grads(), 0.f);
    std::vector<LocalBatch> parts;
    std::array<double, 4> sums{};  // trained labels, long-range labels, loss sum, long-range loss sum
    // trained labels, long-range labels; with document masking the causal (query, key) pairs and those inside documents
    std::array<double, 4> counts{};
    for (int64_t m = 0; m < loader.micro_steps(); ++m) {
      parts.push_back(rank_shard(loader.get(step, m), shard));
      const LocalBatch& part = parts.back();
      for (size_t i = 0; i < part.labels.size(); ++i) {
        counts[0] += part.labels[i] >= 0;
        counts[1] += part.labels[i] >= 0 && part.long_range[i];
      }
      if (documents)
        for (size_t i = 0; i < part.labels.size();)
          for (const Chunk& c : shard)
            for (int64_t p = c.start; p < c.start + c.length; ++p, ++i) {
              counts[2] += static_cast<double>(p + 1);
              counts[3] += static_cast<double>(p - part.doc_start[i] + 1);
            }
    }
    const int64_t ring_pairs = ring ? ring->stats().block_pairs : 0;
    const int64_t ring_skipped = ring ? ring->stats().block_pairs_skipped : 0;
    Timer collective;
    world.all_reduce_sum(counts.data(), 4);
    collectives_s += collective.seconds();
    const float loss_scale = counts[0] > 0 ? static_cast<float>(1.0 / counts[0]) : 0.f;
    const LlamaModel::GradientsReady post_bucket = [&](int64_t begin, int64_t end) { reducer.post(begin, end); };
    communication.begin(setup);
    for (const LocalBatch& part : parts) {
      backend.upload(part.tokens.data(), batch.tokens);
      backend.upload(part.labels.data(), batch.labels);
      backend.upload(part.pos.data(), batch.pos);
      if (documents) backend.upload(part.doc_start.data(), batch.doc_start);
      const bool last = &part == &parts.back();  // its backward completes the gradients: reduce them as they come
      model.forward_backward(batch, loss_scale, losses, last && reducer.overlaps() ? post_bucket : nullptr);
      backend.download(losses, host_losses.data());
      for (size_t i = 0; i < host_losses.size(); ++i) {
        sums[2] += host_losses[i];
        if (part.long_range[i] && part.labels[i] >= 0) sums[3] += host_losses[i];
      }
    }
    communication.end(setup);
    std::array<double, 2> loss_sums{sums[2], sums[3]};
    collective.reset();
    world.all_reduce_sum(loss_sums.data(), 2);
    reducer.finish();  // every rank saw other tokens: gradients summed over cp, ulysses and dp
    collectives_s += collective.seconds();
    const double grad_norm = std::sqrt(backend.sum_squares(model.params().grads()));
    const double clip = tc.grad_clip > 0 && grad_norm > tc.grad_clip ? tc.grad_clip / (grad_norm + 1e-6) : 1.0;
    const double lr = lr_at(tc, step);
    optimizer.step(static_cast<float>(lr), static_cast<float>(clip));
    tensor_peak = std::max(tensor_peak, memory_count().peak);
    if (config.parallel.check_every > 0 && (step + 1) % config.parallel.check_every == 0)
      parameters_check_agree(world, model.params(), step + 1);
    const double seconds = timer.seconds();
    step_seconds.push_back(seconds);
    std::optional<StepParts> step_part;  // CPU kernels only: CUDA's run asynchronously
    if (device == Device::cpu) {
      const ComputeTime c = compute_time();
      step_part = StepParts{1e3 * (c.gemm_s - compute_at_begin.gemm_s),
                            1e3 * (c.attention_s - compute_at_begin.attention_s),
                            1e3 * (communication_waited_s(setup) - waited_at_begin + collectives_s)};
      step_parts.push_back(*step_part);
    }

    const double loss = counts[0] > 0 ? loss_sums[0] / counts[0] : 0.0;
    std::optional<double> long_loss;
    if (dataset->has_long_range() && counts[1] > 0) long_loss = loss_sums[1] / counts[1];
    result.losses.push_back(loss);
    result.long_losses.push_back(long_loss);
    if (!std::isfinite(loss)) throw UserError("the loss became " + std::to_string(loss) + " at step " + std::to_string(step + 1) + "; lower train.lr");
    const bool last = step + 1 == end;
    const StepCheckpoint saved = checkpoints.after_step(step + 1, last);  // when due, or on SIGTERM / SIGINT
    if (rank == 0 && ((step + 1) % config.log.every == 0 || last || saved.written)) {
      StepMetrics m;
      m.step = step + 1;
      m.steps = tc.steps;
      m.loss = loss;
      m.long_range_loss = long_loss;
      m.lr = lr;
      m.grad_norm = grad_norm;
      m.tokens_per_s = static_cast<double>(tc.batch_size * tc.seq_len) / seconds;
      m.ms_per_step = 1e3 * seconds;
      m.parts = step_part;
      // Packed documents: the attention work document masking skipped is not done, so it does not count.
      const double skipped = documents && counts[2] > 0 ? 1.0 - counts[3] / counts[2] : 0.0;
      m.peak_fraction = (flops_per_step - skipped * attention_flops_per_step) / seconds / (config.log.peak_gflops * 1e9);
      m.memory_gib = static_cast<double>(memory_resident_bytes()) / (1u << 30);
      m.eta_s = total.seconds() / static_cast<double>(step + 1 - first_step) * static_cast<double>(tc.steps - step - 1);
      if (saved.written) m.checkpoint_ms = 1e3 * saved.saved.seconds;
      if (documents && counts[2] > 0) m.doc_skipped = skipped;
      if (documents && ring) {
        const int64_t done = ring->stats().block_pairs - ring_pairs;
        const int64_t skipped = ring->stats().block_pairs_skipped - ring_skipped;
        if (done + skipped > 0) m.ring_blocks_skipped = static_cast<double>(skipped) / static_cast<double>(done + skipped);
      }
      metrics->append(m);
      if (tensorboard) tensorboard_scalars(*tensorboard, m);
      if (log) {
        std::printf("%s\n", metrics_line(m).c_str());
        std::fflush(stdout);
      }
    }
    checkpoints.report(saved, step + 1);
    if (tc.eval_every > 0 && ((step + 1) % tc.eval_every == 0 || last)) {
      const EvalResult e = eval_sequences(config, setup, *eval_dataset, tc.batch_size);
      result.eval_losses.emplace_back(step + 1, e.loss);
      if (tensorboard) {
        tensorboard->scalar("eval/loss", step + 1, e.loss);
        if (e.long_range_loss) tensorboard->scalar("eval/long_range_loss", step + 1, *e.long_range_loss);
        tensorboard->flush();
      }
      if (log) {
        std::printf("eval step %ld | %ld held-out sequences | loss %.4f", step + 1, e.sequences, e.loss);
        if (e.long_range_loss) std::printf(" | long %.4f", *e.long_range_loss);
        std::printf("\n");
        std::fflush(stdout);
      }
    }
    result.stopped = saved.stop;
    if (saved.stop) break;
  }
  if (log && reducer.overlaps()) {
    const GradientReducer::Stats g = reducer.stats();
    std::printf("gradients | all-reduced in %ld buckets during the backward: %.3f s of all-reduce, %.3f s exposed "
                "(%.0f%% hidden)\n",
                static_cast<long>(g.buckets), g.reduce_s, g.exposed_s,
                g.reduce_s > 0 ? 100.0 * std::max(0.0, 1.0 - g.exposed_s / g.reduce_s) : 0.0);
    std::fflush(stdout);
  }
  if (log && world.size() > 1 && !step_seconds.empty())
    std::printf("%s\n", communication.describe(static_cast<int64_t>(step_seconds.size()),
                                              static_cast<int64_t>(model.params().grads().bytes())).c_str());
  if (log && !step_parts.empty() && step_parts.size() == step_seconds.size())
    std::printf("%s\n", step_parts_describe(step_seconds, step_parts).c_str());
  if (!step_seconds.empty()) {
    const MemoryPeaks peaks = memory_peaks_over_ranks(world, tensor_peak);
    if (log) std::printf("%s\n", peaks.describe().c_str());
  }
  if (step_seconds.size() > 1) {
    std::vector<double> s(step_seconds.begin() + 1, step_seconds.end());
    std::nth_element(s.begin(), s.begin() + s.size() / 2, s.end());
    result.tokens_per_s = static_cast<double>(tc.batch_size * tc.seq_len) / s[s.size() / 2];
  } else if (!step_seconds.empty()) {
    result.tokens_per_s = static_cast<double>(tc.batch_size * tc.seq_len) / step_seconds[0];
  }
  return result;
}

}  // namespace rt
