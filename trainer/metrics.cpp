// Step metrics: the console line, metrics.jsonl, and the PNG of a run's curves.
#include "trainer/metrics.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/check.h"
#include "trainer/plot.h"

namespace rt {
namespace {

std::string duration_text(double s) {
  char buf[64];
  const int64_t t = static_cast<int64_t>(s + 0.5);
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t / 60) % 60);
  else
    std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  return buf;
}

}  // namespace

std::string metrics_line(const StepMetrics& m) {
  char buf[512];
  int n = std::snprintf(buf, sizeof buf, "step %ld/%ld | loss %.4f", m.step, m.steps, m.loss);
  if (m.long_range_loss) n += std::snprintf(buf + n, sizeof buf - n, " | long %.4f", *m.long_range_loss);
  n += std::snprintf(buf + n, sizeof buf - n, " | lr %.1e | grad %.2f | %.0f tok/s | %.0f ms | %.0f%% peak | %.1f GiB",
                     m.lr, m.grad_norm, m.tokens_per_s, m.ms_per_step, 100.0 * m.peak_fraction, m.memory_gib);
  if (m.doc_skipped) n += std::snprintf(buf + n, sizeof buf - n, " | docs skip %.0f%%", 100.0 * *m.doc_skipped);
  if (m.ring_blocks_skipped)
    n += std::snprintf(buf + n, sizeof buf - n, " (ring blocks %.0f%%)", 100.0 * *m.ring_blocks_skipped);
  if (m.step < m.steps) std::snprintf(buf + n, sizeof buf - n, " | eta %s", duration_text(m.eta_s).c_str());
  return buf;
}

std::string metrics_json(const StepMetrics& m) {
  nlohmann::ordered_json j;
  j["step"] = m.step;
  j["loss"] = m.loss;
  if (m.long_range_loss) j["long_range_loss"] = *m.long_range_loss;
  j["lr"] = m.lr;
  j["grad_norm"] = m.grad_norm;
  j["tokens_per_s"] = m.tokens_per_s;
  j["ms_per_step"] = m.ms_per_step;
  j["peak_fraction"] = m.peak_fraction;
  j["memory_gib"] = m.memory_gib;
  if (m.checkpoint_ms) j["checkpoint_ms"] = *m.checkpoint_ms;
  if (m.doc_skipped) j["doc_skipped_share"] = *m.doc_skipped;
  if (m.ring_blocks_skipped) j["ring_blocks_skipped_share"] = *m.ring_blocks_skipped;
  if (m.parts) {
    j["gemm_ms"] = m.parts->gemm_ms;
    j["attention_ms"] = m.parts->attention_ms;
    j["comm_wait_ms"] = m.parts->comm_wait_ms;
  }
  return j.dump();
}

std::vector<StepSeconds> metrics_step_seconds(const std::string& dir) {
  std::vector<StepSeconds> out;
  std::ifstream in(dir + "/metrics.jsonl");
  for (std::string line; std::getline(in, line);) {
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_object() || !j.contains("ms_per_step") || j.value("step", 0) <= 1) continue;
    StepSeconds s;
    s.step = j["ms_per_step"].get<double>() / 1e3;
    s.has_parts = j.contains("gemm_ms") && j.contains("attention_ms") && j.contains("comm_wait_ms");
    if (s.has_parts) {
      s.gemm = j["gemm_ms"].get<double>() / 1e3;
      s.attention = j["attention_ms"].get<double>() / 1e3;
      s.comm_wait = j["comm_wait_ms"].get<double>() / 1e3;
      s.other = s.step - s.gemm - s.attention - s.comm_wait;
    }
    out.push_back(s);
  }
  return out;
}

void metrics_plot(const std::string& dir, const std::string& png) {
  const std::string path = dir + "/metrics.jsonl";
  std::ifstream in(path);
  if (!in) throw UserError("cannot read '" + path + "'; give a run directory (log.dir of a training run)");
  PlotSeries loss{"loss", {}, {}}, long_range{"long-range loss", {}, {}};
  for (std::string line; std::getline(in, line);) {
    const nlohmann::json r = nlohmann::json::parse(line, nullptr, false);
    if (r.is_discarded() || !r.contains("step") || !r.contains("loss")) continue;
    loss.x.push_back(r["step"].get<double>()), loss.y.push_back(r["loss"].get<double>());
    if (r.contains("long_range_loss"))
      long_range.x.push_back(r["step"].get<double>()), long_range.y.push_back(r["long_range_loss"].get<double>());
  }
  if (loss.x.empty()) throw UserError("'" + path + "' holds no step; train first, or give another run directory");
  LinePlot plot{"training loss: " + dir, "step", "loss (nats/token)", false, {loss}};
  if (!long_range.x.empty()) plot.series.push_back(long_range);
  plot_lines_png(plot, png);
}

MetricsLog::MetricsLog(const std::string& dir, int64_t resumed_from) {
  const std::string path = dir + "/metrics.jsonl";
  std::string kept;
  if (resumed_from > 0) {
    std::ifstream old(path);
    for (std::string line; std::getline(old, line);) {
      const nlohmann::json record = nlohmann::json::parse(line, nullptr, false);
      if (!record.is_discarded() && record.contains("step") && record["step"].is_number_integer() &&
          record["step"].get<int64_t>() <= resumed_from)
        kept += line + "\n";
    }
  }
  file_ = std::fopen(path.c_str(), "w");
  if (!file_) throw UserError("cannot write '" + path + "': " + std::strerror(errno) + "; set log.dir to a writable directory");
  std::fputs(kept.c_str(), file_);
}

MetricsLog::~MetricsLog() {
  if (file_) std::fclose(file_);
}

void MetricsLog::append(const StepMetrics& m) {
  std::fprintf(file_, "%s\n", metrics_json(m).c_str());
  std::fflush(file_);
}

}  // namespace rt
