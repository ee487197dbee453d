// Runs a planned layout for a few steps through the launcher and measures its step time and per-rank peak memory.
#include "trainer/plan_validate.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <regex>
#include <sstream>

#include "core/check.h"
#include "trainer/child_command.h"
#include "trainer/metrics.h"

namespace rt {

namespace {

// The --set overrides that give a run the layout's settings, after the user's own.
std::vector<std::string> layout_sets(const PlanLayout& l, int64_t steps, const std::string& dir) {
  auto set = [](const char* key, auto value) {
    std::ostringstream text;
    text << key << "=" << value;
    return text.str();
  };
  return {set("parallel.cp", l.cp),
          set("parallel.dp", l.dp),
          set("parallel.ulysses", l.ulysses),
          set("train.seq_len", l.seq_len),
          set("train.batch_size", l.batch_size),
          set("train.micro_batch_size", l.micro_batch),
          set("train.recompute", l.recompute ? "full" : "none"),
          set("train.precision", l.bf16 ? "bf16" : "fp32"),
          set("train.steps", steps),
          set("train.warmup_steps", 1),
          set("train.eval_every", 0),
          set("train.stages", ""),
          set("checkpoint.every", 0),
          set("log.every", 1),
          set("log.tensorboard", "false"),
          set("log.dir", dir)};
}

// The median of one field over the steps; of an even count, the mean of the middle two.
double median(const std::vector<StepSeconds>& steps, double StepSeconds::*field) {
  std::vector<double> v;
  for (const StepSeconds& s : steps) v.push_back(s.*field);
  std::sort(v.begin(), v.end());
  const size_t half = v.size() / 2;
  return v.size() % 2 ? v[half] : (v[half - 1] + v[half]) / 2;
}

}  // namespace

ValidatedLayout plan_validate(const PlannedLayout& planned, const ValidateOptions& options) {
  const std::string launcher = options.launch.substr(0, options.launch.find(' '));
  RT_USER_CHECK(std::filesystem::exists(launcher), "plan --validate launches runs with " + launcher +
                                                       ", which is not there; run from the source tree or give "
                                                       "--launch 'launch/run.sh [--local-cluster | --hostfile F]'");
  RT_USER_CHECK(options.steps >= 2,
                "--steps " + std::to_string(options.steps) + ": at least 2 (the first is not timed)");
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("ringtrain_validate_" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::string command = "RINGTRAIN_BIN=" + shell_quote(child_self_path()) + " " + options.launch + " train";
  if (!options.config_path.empty()) command += " --config " + shell_quote(options.config_path);
  command += " --set";
  for (const std::string& s : options.overrides) command.append(" ").append(shell_quote(s));
  for (const std::string& s : layout_sets(planned.layout, options.steps, dir.string()))
    command.append(" ").append(shell_quote(s));
  const ChildResult run = child_command_run(command);
  const std::string& output = run.output;
  const int status = run.status;

  ValidatedLayout v;
  v.planned = planned;
  const std::vector<StepSeconds> steps = metrics_step_seconds(dir.string());
  std::smatch m;
  const bool memory = std::regex_search(
      output, m,
      std::regex("memory \\| per rank peak: tensors ([0-9]+) bytes \\(rank [0-9]+\\), resident ([0-9]+) bytes"));
  std::filesystem::remove_all(dir);
  RT_USER_CHECK(status == 0 && !steps.empty() && memory,
                "plan --validate: the run of " + plan_layout_describe(planned.layout) + " failed (exit " +
                    std::to_string(status) + "): " + output.substr(output.size() > 2000 ? output.size() - 2000 : 0));
  v.measured_step_s = median(steps, &StepSeconds::step);
  v.measured_parts = std::all_of(steps.begin(), steps.end(), [](const StepSeconds& s) { return s.has_parts; });
  if (v.measured_parts) {
    v.measured_gemm_s = median(steps, &StepSeconds::gemm);
    v.measured_attention_s = median(steps, &StepSeconds::attention);
    v.measured_wait_s = median(steps, &StepSeconds::comm_wait);
    v.measured_other_s = median(steps, &StepSeconds::other);
  }
  v.measured_tensor_bytes = std::stod(m[1]);
  v.measured_resident_bytes = std::stod(m[2]);
  return v;
}

std::string validated_header() {
  return "| layout | ranks x cores | predicted step s | measured step s | step error | predicted MiB per rank | "
         "measured MiB (resident peak) | memory error |\n|---|---|---|---|---|---|---|---|";
}

std::string validated_row(const ValidatedLayout& v) {
  char text[400];
  const PlannedLayout& p = v.planned;
  std::snprintf(text, sizeof text, "| %s | %ld x %.3g | %.3f | %.3f | %+.1f%% | %.1f | %.1f | %+.1f%% |",
                plan_layout_describe(p.layout).c_str(), static_cast<long>(p.layout.ranks()), p.placement.compute_cores,
                p.time.step_s, v.measured_step_s, 100 * v.step_error(),
                static_cast<double>(p.memory.total()) / 1048576.0, v.measured_resident_bytes / 1048576.0,
                100 * v.memory_error());
  return text;
}

}  // namespace rt
