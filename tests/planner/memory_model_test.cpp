// The planner's memory model against the tensors a real training step allocates: ringtrain train runs one step of
// each layout (under mpirun where it has several ranks) and reports the tensors' counted peak; the model must give
// the same bytes. Deterministic: both sides count allocations, not the resident set.
#include "planner/memory_model.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <regex>
#include <string>

#include "core/cpu/kernels.h"
#include "tests/test_process.h"
#include "trainer/config.h"

namespace {

namespace fs = std::filesystem;

struct Case {
  std::string name;
  int ranks;
  std::string sets;  // --set overrides over configs/tiny.yaml
  int64_t threads;   // per rank
};

// The "memory | per rank peak: tensors N bytes" line of a run.
int64_t tensor_peak_of(const std::string& output) {
  std::smatch m;
  if (!std::regex_search(output, m, std::regex("memory \\| per rank peak: tensors ([0-9]+) bytes"))) return -1;
  return std::stoll(m[1]);
}

rt::Config config_of(const Case& c) {
  rt::Config config = rt::config_load(rt_test::source_dir() + "/configs/tiny.yaml");
  std::istringstream sets(c.sets);
  for (std::string word; sets >> word;)
    if (word != "--set") rt::config_set(config, word);
  return config;
}

class MemoryModel : public ::testing::TestWithParam<Case> {};

TEST_P(MemoryModel, PredictsTheTensorsOfARealStep) {
  const Case& c = GetParam();
  const fs::path dir = fs::temp_directory_path() / ("ringtrain_plan_memory_" + std::to_string(getpid()) + "_" + c.name);
  const std::string args =
      rt_test::program(RINGTRAIN_BIN) + " train --config " + rt_test::source_dir() +
      "/configs/tiny.yaml --set train.steps=2 --set checkpoint.every=0 --set log.tensorboard=false "
      "--set log.dir=" +
      dir.string() + " --set train.threads=" + std::to_string(c.threads) + " " + c.sets;
  const std::string command =
      c.ranks == 1 ? "timeout 300 " + args
                   : "timeout 300 " + rt_test::mpiexec() + " -n " + std::to_string(c.ranks) +
                         " --oversubscribe --allow-run-as-root --mca btl self,vader --bind-to none " + args;
  const rt_test::Outcome o = rt_test::run_command(command);
  fs::remove_all(dir);
  ASSERT_EQ(o.code, 0) << o.output;
  const int64_t measured = tensor_peak_of(o.output);
  ASSERT_GT(measured, 0) << o.output;

  const rt::Config config = config_of(c);
  rt::PlanLayout layout = rt::plan_layout_of(config, c.threads);
  layout.bf16_staging_bytes = rt::cpu::gemm_bf16_implementation().empty() ? 4 : 2;  // as `ringtrain plan` sets it
  const rt::MemoryPlan plan = rt::plan_memory(layout, 0);
  std::string terms;
  for (const rt::MemoryTerm& t : plan.terms) terms += "  " + t.name + " " + std::to_string(t.bytes) + "\n";
  EXPECT_EQ(plan.tensors(), measured) << "predicted - measured = " << plan.tensors() - measured << " bytes\n" << terms;
}

// Odd lengths (padding), micro-batches, the 4096-row loss chunk, every layout and precision the trainer has.
INSTANTIATE_TEST_SUITE_P(
    Layouts, MemoryModel,
    ::testing::Values(
        Case{"cp1", 1, "--set train.seq_len=300 --set train.batch_size=2 --set train.micro_batch_size=2", 2},
        Case{"cp1_long", 1, "--set train.seq_len=5000 --set train.batch_size=1 --set model.num_hidden_layers=1", 1},
        Case{"cp1_bf16_recompute", 1,
             "--set train.seq_len=1000 --set train.batch_size=2 --set train.precision=bf16 --set train.recompute=full",
             2},
        Case{"cp2", 2, "--set train.seq_len=1000 --set train.batch_size=2 --set parallel.cp=2", 1},
        Case{"cp2_bf16", 2,
             "--set train.seq_len=4100 --set train.batch_size=1 --set parallel.cp=2 --set train.precision=bf16", 1},
        Case{"cp3_contiguous_recompute", 3,
             "--set train.seq_len=700 --set train.batch_size=1 --set parallel.cp=3 --set parallel.sharding=contiguous "
             "--set train.recompute=full",
             1},
        Case{"ulysses2", 2, "--set train.seq_len=512 --set train.batch_size=2 --set parallel.ulysses=2", 1},
        Case{"cp2_ulysses2", 4,
             "--set train.seq_len=1024 --set train.batch_size=1 --set parallel.cp=2 --set parallel.ulysses=2", 1},
        Case{"dp2_gqa", 2,
             "--set train.seq_len=256 --set train.batch_size=4 --set parallel.dp=2 --set model.num_key_value_heads=2",
             1}),
    [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

}  // namespace
