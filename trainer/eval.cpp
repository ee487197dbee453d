// `ringtrain eval`: the shared set-up, a checkpoint's weights, and the model's forward over held-out sequences.
#include "trainer/eval.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "checkpoints/checkpoint.h"
#include "core/check.h"
#include "data/loader.h"
#include "data/rank_shard.h"
#include "trainer/plot.h"
#include "trainer/run_setup.h"
#include "trainer/train_checkpoint.h"

namespace rt {
namespace {

// Bucket of global position p: 0 for p = 0, then k for p in [2^(k-1), 2^k).
size_t bucket_of(int64_t p) {
  size_t k = 0;
  while ((int64_t{1} << k) <= p) ++k;
  return k;
}

}  // namespace

EvalResult eval_sequences(const Config& config, RunSetup& setup, const Dataset& dataset, int64_t sequences) {
  Mesh& mesh = setup.mesh;
  Backend& backend = *setup.backend;
  LlamaModel& model = *setup.model;
  EvalResult result;
  const int64_t S = config.train.seq_len, micro = 1;
  const int64_t per_round = mesh.dp * micro, rounds = (sequences + per_round - 1) / per_round;
  result.sequences = rounds * per_round;
  Loader loader(dataset, S, per_round, micro, mesh.dp_rank, mesh.dp, config.data.reset_positions);
  const std::vector<Chunk> shard = mesh_chunks(mesh, setup.padded, setup.sharding);
  const int64_t n_local = micro * setup.padded / mesh.sequence_ranks();
  Batch batch{micro,
              setup.padded / mesh.sequence_ranks(),
              backend.alloc({n_local}, DType::i32),
              backend.alloc({n_local}, DType::i32),
              backend.alloc({n_local}, DType::i32),
              config.data.document_mask ? backend.alloc({n_local}, DType::i32) : Tensor{}};
  Tensor losses = backend.alloc({n_local}), hits = backend.alloc({n_local});
  std::vector<float> host(static_cast<size_t>(n_local)), host_hits(static_cast<size_t>(n_local));
  // Per bucket: loss sum and token count; then the totals: loss, tokens, long-range loss, long-range tokens,
  // long-range hits; then per global sequence: its long-range labels and hits.
  const size_t buckets = bucket_of(S - 1) + 1, totals = 2 * buckets, per_sequence = totals + 5;
  std::vector<double> sums(per_sequence + 2 * static_cast<size_t>(result.sequences), 0.0);
  for (int64_t round = 0; round < rounds; ++round) {
    const LocalBatch part = rank_shard(loader.get(round, 0), shard);
    backend.upload(part.tokens.data(), batch.tokens);
    backend.upload(part.labels.data(), batch.labels);
    backend.upload(part.pos.data(), batch.pos);
    if (batch.doc_start.defined()) backend.upload(part.doc_start.data(), batch.doc_start);
    model.forward(batch, losses, &hits);
    backend.download(losses, host.data());
    backend.download(hits, host_hits.data());
    double* sequence = &sums[per_sequence + 2 * static_cast<size_t>(round * per_round + mesh.dp_rank)];
    for (size_t i = 0; i < part.labels.size();)
      for (const Chunk& c : shard)
        for (int64_t p = c.start; p < c.start + c.length; ++p, ++i) {
          if (part.labels[i] < 0) continue;
          const size_t k = bucket_of(p);
          sums[2 * k] += host[i], sums[2 * k + 1] += 1;
          sums[totals] += host[i], sums[totals + 1] += 1;
          if (!part.long_range[i]) continue;
          sums[totals + 2] += host[i], sums[totals + 3] += 1, sums[totals + 4] += host_hits[i];
          sequence[0] += 1, sequence[1] += host_hits[i];
        }
  }
  mesh.world->all_reduce_sum(sums.data(), static_cast<int64_t>(sums.size()));
  result.tokens = static_cast<int64_t>(sums[totals + 1]);
  RT_USER_CHECK(result.tokens > 0, "the held-out sequences have no trained labels; use more or longer sequences");
  result.loss = sums[totals] / sums[totals + 1];
  if (dataset.has_long_range() && sums[totals + 3] > 0) {
    result.long_range_loss = sums[totals + 2] / sums[totals + 3];
    result.long_range_accuracy = sums[totals + 4] / sums[totals + 3];
    int64_t exact = 0;
    for (int64_t s = 0; s < result.sequences; ++s) {
      const double labels = sums[per_sequence + 2 * s], hit = sums[per_sequence + 2 * s + 1];
      if (labels == 0) continue;
      ++result.exact_sequences;
      exact += hit == labels;
    }
    result.exact_match = static_cast<double>(exact) / static_cast<double>(result.exact_sequences);
  }
  for (size_t k = 0; k < buckets; ++k) {
    if (sums[2 * k + 1] == 0) continue;
    const int64_t from = k == 0 ? 0 : int64_t{1} << (k - 1), to = std::min<int64_t>(int64_t{1} << k, S);
    result.by_position.push_back({from, to, static_cast<int64_t>(sums[2 * k + 1]), sums[2 * k] / sums[2 * k + 1]});
  }
  return result;
}

EvalResult eval_run(const Config& config, const EvalOptions& options) {
  RT_USER_CHECK(options.sequences >= 1, "--sequences must be >= 1 (got " + std::to_string(options.sequences) + ")");
  RunSetup setup = run_setup_make(config);
  Mesh& mesh = setup.mesh;
  const std::string checkpoint =
      model_weights_load(options.checkpoint, config, *setup.model, *setup.backend, *mesh.world);
  const uint64_t seed = options.seed ? *options.seed : static_cast<uint64_t>(config.train.seed) + 1;
  auto dataset = run_dataset_make(config, seed);
  EvalResult result = eval_sequences(config, setup, *dataset, options.sequences);
  result.checkpoint = checkpoint;
  result.step = checkpoint_info_read(checkpoint).step;
  const int64_t S = config.train.seq_len;

  if (mesh.world->rank() == 0) {
    const std::string out =
        options.out.empty() ? (std::filesystem::path(config.log.dir) / "eval.json").string() : options.out;
    std::error_code ec;
    if (std::filesystem::path(out).has_parent_path())
      std::filesystem::create_directories(std::filesystem::path(out).parent_path(), ec);
    std::ofstream file(out);
    if (!file) throw UserError("cannot write the eval report '" + out + "'; give --out a writable path");
    file << eval_json(result, config) << "\n";
    // The plot beside the report: loss against position, log-spaced (each bucket [from, to) drawn at `to`).
    const std::string png = std::filesystem::path(out).replace_extension(".png").string();
    PlotSeries series{"loss", {}, {}};
    for (const PositionBucket& b : result.by_position)
      series.x.push_back(static_cast<double>(b.to)), series.y.push_back(b.loss);
    plot_lines_png({"held-out loss by position: " + result.checkpoint,
                    "token position (end of a log2 bucket)",
                    "loss (nats/token)",
                    true,
                    {series}},
                   png);
    if (options.print) {
      std::printf(
          "eval | %s (step %ld) | %ld sequences x %ld tokens, %ld rank(s) (cp %d) | loss %.4f nats/token | "
          "%.4f bits/token | ppl %.3f",
          result.checkpoint.c_str(), result.step, result.sequences, S, static_cast<long>(mesh.world->size()), mesh.cp,
          result.loss, result.loss / std::log(2.0), std::exp(result.loss));
      if (result.long_range_loss)
        std::printf(" | long %.4f, %.1f%% argmax, %.1f%% of sequences exact", *result.long_range_loss,
                    100 * *result.long_range_accuracy, 100 * *result.exact_match);
      std::printf(" | %s, %s\n", out.c_str(), png.c_str());
      std::fflush(stdout);
    }
  }
  return result;
}

std::string eval_json(const EvalResult& r, const Config& config) {
  nlohmann::ordered_json j;
  j["checkpoint"] = r.checkpoint;
  j["step"] = r.step;
  j["task"] = config.data.task;
  j["path"] = config.data.path;
  j["seq_len"] = config.train.seq_len;
  j["sequences"] = r.sequences;
  j["tokens"] = r.tokens;
  j["loss"] = r.loss;
  j["bits_per_token"] = r.loss / std::log(2.0);  // bits per byte for byte-level text
  j["perplexity"] = std::exp(r.loss);
  if (r.long_range_loss) {
    j["long_range_loss"] = *r.long_range_loss;
    j["long_range_accuracy"] = *r.long_range_accuracy;
    j["exact_match"] = *r.exact_match;
  }
  nlohmann::ordered_json buckets = nlohmann::ordered_json::array();
  for (const PositionBucket& b : r.by_position)
    buckets.push_back({{"from", b.from}, {"to", b.to}, {"tokens", b.tokens}, {"loss", b.loss}});
  j["loss_by_position"] = buckets;
  return j.dump(2);
}

}  // namespace rt
