// The retrieval grid: per context length one set-up and the checkpoint's weights, per depth a probe dataset whose
// long-range labels are the answer, scored by eval_sequences' exact match; JSON and a heatmap.
#include "trainer/retrieval_eval.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "checkpoints/checkpoint.h"
#include "core/check.h"
#include "data/dataset.h"
#include "trainer/eval.h"
#include "trainer/plot.h"
#include "trainer/run_setup.h"
#include "trainer/train_checkpoint.h"

namespace rt {
namespace {

std::vector<int64_t> default_lengths(const std::string& task, int64_t seq_len) {
  std::vector<int64_t> out;
  for (int64_t l : {seq_len / 4, seq_len / 2, seq_len, 2 * seq_len, 4 * seq_len})
    if (l >= retrieval_probe_min_seq_len(task)) out.push_back(l);
  RT_USER_CHECK(!out.empty(), "eval --task " + task + " needs contexts of at least " +
                                  std::to_string(retrieval_probe_min_seq_len(task)) +
                                  " tokens; give --lengths (train.seq_len is " + std::to_string(seq_len) + ")");
  return out;
}

std::string depth_text(double d) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%g", d);
  return buf;
}

}  // namespace

RetrievalResult retrieval_run(const Config& config, const RetrievalOptions& options) {
  RT_USER_CHECK(options.task == "recall" || options.task == "passkey",
                "unknown --task '" + options.task + "'; valid: recall, passkey");
  RT_USER_CHECK(options.sequences >= 1, "--sequences must be >= 1 (got " + std::to_string(options.sequences) + ")");
  RetrievalResult result;
  result.task = options.task;
  result.lengths = options.lengths.empty() ? default_lengths(options.task, config.train.seq_len) : options.lengths;
  result.depths = options.depths.empty() ? std::vector<double>{0, 0.25, 0.5, 0.75, 1} : options.depths;
  for (int64_t l : result.lengths)
    RT_USER_CHECK(l >= retrieval_probe_min_seq_len(options.task),
                  "--lengths: " + std::to_string(l) + " is too short for --task " + options.task +
                      "; valid: >= " + std::to_string(retrieval_probe_min_seq_len(options.task)));
  for (double d : result.depths)
    RT_USER_CHECK(d >= 0 && d <= 1, "--depths: " + depth_text(d) +
                                        " lies outside [0, 1] (0: the context's start, "
                                        "1: right before the question)");
  const uint64_t seed = options.seed ? *options.seed : static_cast<uint64_t>(config.train.seed) + 1;
  bool root = false;
  for (int64_t length : result.lengths) {
    Config at = config;
    at.train.seq_len = length;
    RunSetup setup = run_setup_make(at);
    root = setup.mesh.world->rank() == 0;
    result.checkpoint = model_weights_load(options.checkpoint, at, *setup.model, *setup.backend, *setup.mesh.world);
    std::string line;
    for (double depth : result.depths) {
      auto probes = retrieval_probe_make(options.task, length, depth, at.model.vocab_size, seed);
      const EvalResult r = eval_sequences(at, setup, *probes, options.sequences);
      RT_CHECK(r.exact_match.has_value(), "retrieval probes have long-range labels");
      result.cells.push_back({length, depth, r.exact_sequences, *r.exact_match, *r.long_range_loss});
      char cell[48];
      std::snprintf(cell, sizeof cell, " %g:%.0f%%", depth, 100 * *r.exact_match);
      line += cell;
    }
    if (root && options.print) {
      std::printf("eval %s | context %ld | exact match by depth%s\n", options.task.c_str(), static_cast<long>(length),
                  line.c_str());
      std::fflush(stdout);
    }
  }
  result.step = checkpoint_info_read(result.checkpoint).step;
  if (!root) return result;

  const std::string out = options.out.empty()
                              ? (std::filesystem::path(config.log.dir) / (options.task + "_retrieval.json")).string()
                              : options.out;
  std::error_code ec;
  if (std::filesystem::path(out).has_parent_path())
    std::filesystem::create_directories(std::filesystem::path(out).parent_path(), ec);
  std::ofstream file(out);
  if (!file) throw UserError("cannot write the retrieval report '" + out + "'; give --out a writable path");
  file << retrieval_json(result) << "\n";
  // The heatmap: depth down the side (0 at the top), context length along the bottom.
  Heatmap map{options.task + " exact match: " + result.checkpoint + " (step " + std::to_string(result.step) + ")",
              "context length (tokens)",
              "depth of the answer",
              {},
              {},
              {}};
  for (int64_t l : result.lengths) map.x_ticks.push_back(std::to_string(l));
  for (size_t j = 0; j < result.depths.size(); ++j) {
    map.y_ticks.push_back(depth_text(result.depths[j]));
    std::vector<double> row;
    for (size_t i = 0; i < result.lengths.size(); ++i)
      row.push_back(result.cells[i * result.depths.size() + j].exact_match);
    map.values.push_back(row);
  }
  const std::string png = std::filesystem::path(out).replace_extension(".png").string();
  plot_heatmap_png(map, png);
  if (options.print) {
    double mean = 0;
    for (const RetrievalCell& c : result.cells) mean += c.exact_match / static_cast<double>(result.cells.size());
    std::printf(
        "eval %s | %s (step %ld) | %zu lengths x %zu depths, %ld probes each | mean exact match %.1f%% | %s, "
        "%s\n",
        options.task.c_str(), result.checkpoint.c_str(), static_cast<long>(result.step), result.lengths.size(),
        result.depths.size(), static_cast<long>(result.cells.front().sequences), 100 * mean, out.c_str(), png.c_str());
    std::fflush(stdout);
  }
  return result;
}

std::string retrieval_json(const RetrievalResult& r) {
  nlohmann::ordered_json j;
  j["checkpoint"] = r.checkpoint;
  j["step"] = r.step;
  j["task"] = r.task;
  j["lengths"] = r.lengths;
  j["depths"] = r.depths;
  nlohmann::ordered_json cells = nlohmann::ordered_json::array();
  for (const RetrievalCell& c : r.cells)
    cells.push_back({{"length", c.length},
                     {"depth", c.depth},
                     {"sequences", c.sequences},
                     {"exact_match", c.exact_match},
                     {"answer_loss", c.answer_loss}});
  j["cells"] = cells;
  return j.dump(2);
}

}  // namespace rt
