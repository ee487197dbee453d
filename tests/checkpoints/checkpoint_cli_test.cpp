// Checkpoints as a user meets them through `ringtrain`: bit-exact resume, resume on another rank count, fallback
// past a corrupt checkpoint, refusals (corrupt, truncated, other model shape), resume with the checkpoint's own
// config, a write killed midway, SIGTERM under mpirun, `ringtrain inspect`, and the Python reader on a trained
// checkpoint.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "checkpoints/checkpoint.h"
#include "core/check.h"
#include "core/tensor.h"
#include "tests/checkpoints/corrupt.h"
#include "tests/test_process.h"

namespace rt {
namespace {

namespace fs = std::filesystem;
using rt_test::contains;
using rt_test::flip_byte;
using rt_test::Outcome;

const std::string kTiny = rt_test::source_dir() + "/configs/tiny.yaml";

// Reduction order changes a loss by ~1e-8 relative between rank counts (measured: 1 rank vs cp 2 vs dp 2 on
// configs/tiny.yaml, steps 1-8); consecutive steps' losses differ by ~2e-2, so a resume off by one step or one
// batch of data misses this by three orders of magnitude.
constexpr double kRankCountTolerance = 1e-5;

class CheckpointCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("ringtrain_ckpt_cli_" + std::to_string(getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string run_dir(const std::string& name) const { return (dir_ / name).string(); }
  std::string ckpt(const std::string& run, int64_t step) const {
    return (dir_ / run / "checkpoints" / checkpoint_dir_name(step)).string();
  }

  // `ringtrain train` on configs/tiny.yaml into run directory `name`, on `ranks` ranks (mpirun when > 1).
  Outcome train(const std::string& name, const std::string& args, int ranks = 1, const std::string& env = "") {
    std::string cmd = env + " timeout 300 ";
    if (ranks > 1)
      cmd += rt_test::mpiexec() + " -n " + std::to_string(ranks) +
             " --oversubscribe --allow-run-as-root --mca btl self,vader --bind-to none ";
    return rt_test::run_command(cmd + rt_test::program(RINGTRAIN_BIN) + " train --config " + kTiny +
                                " --set log.every=1 --set log.dir=" + run_dir(name) + " " + args);
  }

  // step -> loss from a run's metrics.jsonl (every line must be a step record).
  std::map<int64_t, double> losses(const std::string& name) const {
    std::map<int64_t, double> out;
    std::ifstream in(dir_ / name / "metrics.jsonl");
    for (std::string line; std::getline(in, line);) {
      nlohmann::json r = nlohmann::json::parse(line);
      EXPECT_EQ(out.count(r["step"].get<int64_t>()), 0u) << "step recorded twice: " << line;
      out[r["step"].get<int64_t>()] = r["loss"].get<double>();
    }
    return out;
  }

  fs::path dir_;
};

// Both checkpoints hold the same weights and AdamW state, bit for bit.
::testing::AssertionResult same_state(const std::string& a_dir, const std::string& b_dir) {
  Checkpoint a = checkpoint_read(a_dir), b = checkpoint_read(b_dir);
  if (a.info().step != b.info().step || a.info().optimizer_step != b.info().optimizer_step)
    return ::testing::AssertionFailure() << "steps differ";
  for (const char* file : {kModelFile, kOptimizerFile}) {
    if (a.tensors(file) != b.tensors(file)) return ::testing::AssertionFailure() << file << ": other tensors";
    for (const auto& [name, shape] : a.tensors(file)) {
      const float *x = a.f32(file, name), *y = b.f32(file, name);
      if ((x == nullptr) != (y == nullptr) ||
          (x && std::memcmp(x, y, static_cast<size_t>(shape_numel(shape)) * sizeof(float)) != 0))
        return ::testing::AssertionFailure() << file << ": " << name << " differs";
    }
  }
  return ::testing::AssertionSuccess();
}

const std::string kSixSteps = "--set train.steps=6 --set checkpoint.every=3";

// Continuing from step 3 gives the losses and the final parameters and moments of the run that never
// stopped, bit for bit; the resumed run's metrics.jsonl holds each step once.
TEST_F(CheckpointCli, ResumeIsBitExact) {
  ASSERT_EQ(train("whole", kSixSteps).code, 0);
  Outcome o = train("resumed", kSixSteps + " --resume " + ckpt("whole", 3));
  ASSERT_EQ(o.code, 0) << o.output;
  EXPECT_TRUE(contains(o.output, {"resuming from " + ckpt("whole", 3) + ": step 3", "step 4/6"}));
  EXPECT_EQ(o.output.find("step 3/6"), std::string::npos) << o.output;
  auto whole = losses("whole"), resumed = losses("resumed");
  ASSERT_EQ(resumed.size(), 3u);
  for (const auto& [step, loss] : resumed) EXPECT_EQ(loss, whole[step]) << "step " << step;
  EXPECT_TRUE(same_state(ckpt("whole", 6), ckpt("resumed", 6)));
  EXPECT_EQ(checkpoint_read(ckpt("resumed", 6)).info().tokens_seen, 6 * 8 * 64);
}

// The same with bf16 GEMMs (train.precision = bf16): their products are deterministic too, and the checkpoint holds the
// fp32 master weights, so the resumed run is the uninterrupted one bit for bit.
TEST_F(CheckpointCli, ResumeIsBitExactInBf16) {
  const std::string args = kSixSteps + " --set train.precision=bf16";
  ASSERT_EQ(train("whole", args).code, 0);
  Outcome o = train("resumed", args + " --resume " + ckpt("whole", 3));
  ASSERT_EQ(o.code, 0) << o.output;
  EXPECT_TRUE(contains(o.output, {"bf16 GEMMs", "step 4/6"}));
  auto whole = losses("whole"), resumed = losses("resumed");
  ASSERT_EQ(resumed.size(), 3u);
  for (const auto& [step, loss] : resumed) EXPECT_EQ(loss, whole[step]) << "step " << step;
  EXPECT_TRUE(same_state(ckpt("whole", 6), ckpt("resumed", 6)));
}

// RoPE scaling is applied at global positions on every rank: cp 2 (zigzag, each rank holding positions from both ends)
// gives one rank's losses, for dynamic (which scales for the global length, not a rank's) and yarn (which also scales
// cos and sin); the same runs with plain RoPE differ (weights start large so that positions matter). The checkpoint's
// config.json carries HF's keys (transformers' own check: bench/peer/hf_load_check.py, ctest hf_parity).
// With weights that large, each step amplifies rounding ~10x: 1 rank against cp 2 differs by 7e-9, 7e-7, 3e-6 relative
// at steps 1-3 (g++), 3e-8, 2e-6, 2e-5 (clang with ASan, launch/sanitizers.sh); scaling moves the loss by 0.5-2%.
TEST_F(CheckpointCli, RopeScalingAtGlobalPositionsOnEveryRank) {
  constexpr double kLargeWeightTolerance = 1e-4;
  const std::string base = "--set train.steps=3 --set checkpoint.every=0 --set model.initializer_range=0.5";
  ASSERT_EQ(train("plain", base).code, 0);
  auto plain = losses("plain");
  for (const std::string type : {"dynamic", "yarn"}) {
    const std::string args =
        base + " --set model.rope_scaling.rope_type=" + type +
        " --set model.rope_scaling.factor=4 --set model.rope_scaling.original_max_position_embeddings=16";
    ASSERT_EQ(train(type + "_one", args).code, 0);
    const Outcome two = train(type + "_two", args + " --set parallel.cp=2", 2);
    ASSERT_EQ(two.code, 0) << two.output;
    auto one = losses(type + "_one"), cp2 = losses(type + "_two");
    ASSERT_EQ(cp2.size(), 3u);
    for (const auto& [step, loss] : cp2) {
      EXPECT_NEAR(loss, one[step], kLargeWeightTolerance * one[step]) << type << " step " << step;
      EXPECT_GT(std::abs(loss - plain[step]), 10 * kLargeWeightTolerance * loss) << type << ": scaling changed nothing";
    }
    std::ifstream in(ckpt(type + "_one", 3) + "/config.json");
    const std::string json((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_TRUE(contains(json, {"\"rope_type\": \"" + type + "\"", "\"factor\": 4.0"})) << json;
  }
}

// train.recompute = full on the ring (cp 2: each recomputed forward exchanges K/V again): the same weights, bit for
// bit, with a smaller activation footprint said at start.
TEST_F(CheckpointCli, RecomputeIsBitIdenticalOnTheRing) {
  const std::string args =
      "--set train.steps=3 --set checkpoint.every=0 --set model.num_hidden_layers=3 "
      "--set parallel.cp=2";
  const Outcome none = train("none", args, 2), full = train("full", args + " --set train.recompute=full", 2);
  ASSERT_EQ(none.code, 0) << none.output;
  ASSERT_EQ(full.code, 0) << full.output;
  EXPECT_TRUE(contains(full.output, {"(train.recompute full)"})) << full.output;
  EXPECT_TRUE(same_state(ckpt("none", 3), ckpt("full", 3)));
}

// Resuming into a longer context with new RoPE settings (a length stage by hand) is allowed and said at start.
TEST_F(CheckpointCli, ResumeAtALongerLengthWithNewRopeIsSaid) {
  ASSERT_EQ(train("short", "--set train.steps=2 --set checkpoint.every=2").code, 0);
  const Outcome o = train("long",
                          "--set train.steps=3 --set train.seq_len=128 --set model.rope_scaling.rope_type=yarn "
                          "--set model.rope_scaling.factor=2 "
                          "--set model.rope_scaling.original_max_position_embeddings=64 --resume " +
                              ckpt("short", 2));
  ASSERT_EQ(o.code, 0) << o.output;
  EXPECT_TRUE(contains(o.output, {"resuming at seq_len 128; checkpoint trained at 64",
                                  "model.rope_scaling.rope_type: checkpoint default, config yarn",
                                  "model.rope_scaling.factor: checkpoint 1.0, config 2.0", "step 3/3"}))
      << o.output;
}

// train.stages: two stages in one job (64 tokens on dp 2, then 128 tokens with another rope_theta on cp 2, the same
// two ranks) equal stage 1 followed by a resume into stage 2, bit for bit; the second stage says what changed.
TEST_F(CheckpointCli, StagesEqualStageOneThenAResumeIntoStageTwo) {
  const std::string stages =
      "--set parallel.dp=2 --set 'train.stages=[{steps: 2, seq_len: 64}, "
      "{steps: 2, seq_len: 128, rope_theta: 20000.0, cp: 2}]'";
  const Outcome staged = train("staged", stages, 2);
  ASSERT_EQ(staged.code, 0) << staged.output;
  EXPECT_TRUE(contains(staged.output, {"stage 1 of 2 | until step 2", "step 2/4", "stage 2 of 2 | until step 4",
                                       "resuming at seq_len 128; checkpoint trained at 64",
                                       "model.rope_theta: checkpoint 10000.0, config 20000.0",
                                       "parallel.cp: checkpoint 1, config 2", "step 4/4"}))
      << staged.output;
  const Outcome resumed = train("resumed", stages + " --resume " + ckpt("staged", 2), 2);
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  auto a = losses("staged"), b = losses("resumed");
  ASSERT_EQ(b.size(), 2u) << resumed.output;
  for (const auto& [step, loss] : b) EXPECT_EQ(loss, a[step]) << "step " << step;
  EXPECT_TRUE(same_state(ckpt("staged", 4), ckpt("resumed", 4)));
  EXPECT_TRUE(contains(train("bad", "--set 'train.stages=[{steps: 2, seqlen: 64}]'").output,
                       {"train.stages: stage 1: unknown key 'seqlen'; valid: steps, seq_len, batch_size, rope_theta, "
                        "rope_scaling, cp"}));
}

// 1 -> 2 ranks (cp 2 and dp 2) and 2 -> 1: the loss curve continues the uninterrupted run's within reduction-order
// tolerance, which it could not with another step's data.
TEST_F(CheckpointCli, ResumeOnAnotherRankCount) {
  const std::string eight = "--set train.steps=8 --set checkpoint.every=4";
  ASSERT_EQ(train("one", eight).code, 0);
  ASSERT_EQ(train("two", eight + " --set parallel.cp=2", 2).code, 0);
  Outcome to_cp2 = train("one_to_cp2", eight + " --set parallel.cp=2 --resume " + ckpt("one", 4), 2);
  ASSERT_EQ(to_cp2.code, 0) << to_cp2.output;
  EXPECT_TRUE(contains(to_cp2.output, {"saved by 1 rank (dp 1 x cp 1), now 2 ranks (dp 1 x cp 2)",
                                       "parallel.cp: checkpoint 1, config 2"}));
  ASSERT_EQ(train("one_to_dp2", eight + " --set parallel.dp=2 --resume " + ckpt("one", 4), 2).code, 0);
  Outcome to_one = train("two_to_one", eight + " --resume " + ckpt("two", 4));
  ASSERT_EQ(to_one.code, 0) << to_one.output;
  EXPECT_TRUE(contains(to_one.output, {"saved by 2 ranks (dp 1 x cp 2), now 1 rank"}));

  auto one = losses("one"), two = losses("two");
  for (int64_t s = 2; s <= 8; ++s)
    ASSERT_GT(std::abs(one[s] - one[s - 1]), 100 * kRankCountTolerance * one[s]) << "steps too alike to tell apart";
  for (const char* run : {"one_to_cp2", "one_to_dp2", "two_to_one"}) {
    auto resumed = losses(run);
    ASSERT_EQ(resumed.size(), 4u) << run;
    for (const auto& [step, loss] : resumed) {
      EXPECT_NEAR(loss, one[step], kRankCountTolerance * one[step]) << run << " step " << step;
      EXPECT_NEAR(loss, two[step], kRankCountTolerance * two[step]) << run << " step " << step;
    }
  }
  Checkpoint c = checkpoint_read(ckpt("one_to_cp2", 8));
  EXPECT_EQ(c.info().next_sequence, 8 * 8);
  EXPECT_EQ(c.info().cp, 2);
  EXPECT_EQ(c.info().world_size, 2);
}

// dp 2: the gradients are all-reduced in buckets during the backward (parallel/gradient_reducer.h), in the same
// buckets and order every step, so the resumed run is still the uninterrupted one bit for bit.
TEST_F(CheckpointCli, ResumeIsBitExactWithGradientsReducedDuringTheBackward) {
  const std::string args = kSixSteps + " --set parallel.dp=2";
  Outcome whole = train("whole", args, 2);
  ASSERT_EQ(whole.code, 0) << whole.output;
  EXPECT_TRUE(contains(whole.output, {"gradients | all-reduced in", "buckets during the backward"}));
  ASSERT_EQ(train("resumed", args + " --resume " + ckpt("whole", 3), 2).code, 0);
  auto a = losses("whole"), b = losses("resumed");
  ASSERT_EQ(b.size(), 3u);
  for (const auto& [step, loss] : b) EXPECT_EQ(loss, a[step]) << "step " << step;
  EXPECT_TRUE(same_state(ckpt("whole", 6), ckpt("resumed", 6)));
}

// Ulysses (parallel.ulysses = 2 on 2 ranks, and 2-D cp 2 x ulysses 2 on 4) gives one rank's losses; a checkpoint moves
// between layouts both ways (ulysses 2 -> 1 rank, 1 rank -> cp 2 x ulysses 2) and the curve continues, and the manifest
// and the resume line name the layout.
TEST_F(CheckpointCli, UlyssesLayoutsEqualOneRankAndResumeAcrossLayouts) {
  const std::string eight = "--set train.steps=8 --set checkpoint.every=4";
  ASSERT_EQ(train("one", eight).code, 0);
  Outcome u2 = train("u2", eight + " --set parallel.ulysses=2", 2);
  ASSERT_EQ(u2.code, 0) << u2.output;
  EXPECT_TRUE(contains(u2.output, {"ulysses | 2 ranks per group", "2 of 4 query heads and 2 of 4 K/V heads",
                                   "communication | per step, rank 0 sent: all-to-all "}));
  EXPECT_EQ(checkpoint_read(ckpt("u2", 8)).info().ulysses, 2);
  Outcome to_one = train("u2_to_one", eight + " --resume " + ckpt("u2", 4));
  ASSERT_EQ(to_one.code, 0) << to_one.output;
  EXPECT_TRUE(contains(to_one.output, {"saved by 2 ranks (dp 1 x cp 1 x ulysses 2), now 1 rank"}));
  Outcome to_2d =
      train("one_to_2d", eight + " --set parallel.cp=2 --set parallel.ulysses=2 --resume " + ckpt("one", 4), 4);
  ASSERT_EQ(to_2d.code, 0) << to_2d.output;
  EXPECT_TRUE(contains(to_2d.output, {"now 4 ranks (dp 1 x cp 2 x ulysses 2)", "Ulysses groups: ranks 0-1",
                                      "communication | per step, rank 0 sent: ring ", " MB (waited ", "all-to-all "}));
  auto one = losses("one");
  for (const char* run : {"u2", "u2_to_one", "one_to_2d"}) {
    auto got = losses(run);
    ASSERT_EQ(got.size(), std::string(run) == "u2" ? 8u : 4u) << run;
    for (const auto& [step, loss] : got)
      EXPECT_NEAR(loss, one[step], kRankCountTolerance * one[step]) << run << " step " << step;
  }
}

// --resume without a path takes `latest`; a newest checkpoint that fails verification is named with the
// reason and skipped for the next one; the run then continues bit-exactly from there.
TEST_F(CheckpointCli, ResumeFallsBackPastACorruptCheckpoint) {
  ASSERT_EQ(train("run", "--set train.steps=6 --set checkpoint.every=2 --set checkpoint.keep=0").code, 0);
  ASSERT_EQ(train("whole", kSixSteps).code, 0);
  flip_byte(ckpt("run", 6) + "/model.safetensors", fs::file_size(ckpt("run", 6) + "/model.safetensors") - 4);
  Outcome o = train("run", "--set train.steps=6 --set checkpoint.every=2 --set checkpoint.keep=0 --resume");
  ASSERT_EQ(o.code, 0) << o.output;
  EXPECT_TRUE(contains(o.output, {"skipping checkpoint " + ckpt("run", 6) + ": " + ckpt("run", 6) +
                                      "/model.safetensors: tensor model.norm.weight",
                                  "fails its checksum", "resuming from " + ckpt("run", 4) + ": step 4", "step 5/6"}));
  EXPECT_TRUE(same_state(ckpt("whole", 6), ckpt("run", 6)));  // step 6 saved anew, and right
  EXPECT_EQ(losses("run").size(), 6u);                        // steps 5 and 6 recorded once
}

TEST_F(CheckpointCli, CorruptOrTruncatedCheckpointIsRefusedByName) {
  ASSERT_EQ(train("run", kSixSteps).code, 0);
  const std::string model = ckpt("run", 6) + "/model.safetensors";
  flip_byte(model, fs::file_size(model) / 2);
  Outcome o = train("again", kSixSteps + " --resume " + ckpt("run", 6));
  EXPECT_EQ(o.code, 2) << o.output;
  EXPECT_TRUE(contains(o.output, {"ringtrain: error: " + model + ": tensor model.layers.", "fails its checksum"}));
  const std::string optimizer = ckpt("run", 3) + "/optimizer.safetensors";
  fs::resize_file(optimizer, fs::file_size(optimizer) - 1000);
  o = train("again", kSixSteps + " --resume " + ckpt("run", 3));
  EXPECT_EQ(o.code, 2) << o.output;
  EXPECT_TRUE(contains(o.output, {"ringtrain: error: " + optimizer + " has ", "truncated", "is incomplete"}));
  // Nothing left that verifies: a directory resume fails too, listing how many it tried.
  o = train("again", kSixSteps + " --resume " + run_dir("run") + "/checkpoints");
  EXPECT_EQ(o.code, 2) << o.output;
  EXPECT_TRUE(contains(o.output, {"no checkpoint in " + run_dir("run") + "/checkpoints verifies (2 tried)"}));
}

TEST_F(CheckpointCli, OtherModelShapeIsRefusedListingTheKeys) {
  ASSERT_EQ(train("run", "--set train.steps=2").code, 0);
  Outcome o = train("run",
                    "--set train.steps=4 --set model.hidden_size=64 --set model.num_hidden_layers=3 "
                    "--set model.rope_theta=500000.0 --resume");
  EXPECT_EQ(o.code, 2) << o.output;
  EXPECT_TRUE(contains(
      o.output, {"ringtrain: error: checkpoint " + ckpt("run", 2) + " holds a model of another shape",
                 "model.hidden_size: checkpoint 128, config 64", "model.num_hidden_layers: checkpoint 2, config 3"}));
  EXPECT_EQ(o.output.find("rope_theta"), std::string::npos) << "not a shape key: " << o.output;
  // A fresh start when the directory holds no checkpoint yet (a first run launched with --resume).
  o = train("fresh", "--set train.steps=1 --resume");
  EXPECT_EQ(o.code, 0) << o.output;
  EXPECT_TRUE(contains(o.output, {"no checkpoint in " + run_dir("fresh") + "/checkpoints; starting from step 0"}));
  o = train("fresh", "--set train.steps=1 --resume " + run_dir("nowhere"));
  EXPECT_EQ(o.code, 2) << o.output;
  EXPECT_TRUE(contains(o.output, {"--resume " + run_dir("nowhere") + ": no such checkpoint"}));
}

// --resume without --config continues with the config saved in the checkpoint: its model shape (configs/tiny.yaml's
// hidden size 128, where the defaults' 256 would be refused), steps, schedule, data and log.dir, bit for bit as the
// run that never stopped; --set overrides still apply on top of it.
TEST_F(CheckpointCli, ResumeWithoutConfigContinuesWithTheCheckpointsConfig) {
  const std::string args = "--set train.steps=6 --set checkpoint.every=2";
  ASSERT_NE(train("run", args, 1, "RINGTRAIN_TEST_KILL_DURING_SAVE=4").code, 0);  // dies saving step 4: latest is 2
  ASSERT_EQ(train("whole", args).code, 0);
  const std::string ringtrain = std::string("timeout 300 ") + rt_test::program(RINGTRAIN_BIN) + " train ";

  // No PATH: the latest under checkpoint.dir of the defaults and --set, here log.dir.
  Outcome o = rt_test::run_command(ringtrain + "--set log.dir=" + run_dir("run") + " --resume");
  ASSERT_EQ(o.code, 0) << o.output;
  EXPECT_TRUE(contains(o.output, {"resuming from " + ckpt("run", 2) + ": step 2", "step 3/6", "step 6/6"}));
  EXPECT_EQ(o.output.find("changed since the checkpoint"), std::string::npos) << o.output;
  EXPECT_EQ(losses("run"), losses("whole"));
  EXPECT_TRUE(same_state(ckpt("whole", 6), ckpt("run", 6)));
  const auto model = checkpoint_read(ckpt("run", 6)).tensors(kModelFile);
  ASSERT_FALSE(model.empty());
  EXPECT_EQ(model.front(), (std::pair<std::string, std::vector<int64_t>>{"model.embed_tokens.weight", {256, 128}}));

  // A checkpoint named by PATH, with overrides: one more step, into another log.dir.
  o = rt_test::run_command(ringtrain + "--resume " + ckpt("run", 6) +
                           " --set train.steps=7 --set log.dir=" + run_dir("more"));
  ASSERT_EQ(o.code, 0) << o.output;
  EXPECT_TRUE(contains(
      o.output, {"resuming from " + ckpt("run", 6) + ": step 6", "step 7/7", "train.steps: checkpoint 6, config 7",
                 "log.dir: checkpoint " + run_dir("run") + ", config " + run_dir("more")}));
  const Checkpoint more = checkpoint_read(ckpt("more", 7));
  EXPECT_EQ(more.tensors(kModelFile), model);
  EXPECT_TRUE(contains(more.info().config_yaml, {"hidden_size: 128", "steps: 7", "seq_len: 64"}));
}

// A write killed midway (SIGKILL halfway through optimizer.safetensors) leaves the previous checkpoint as
// `latest`, intact; --resume continues from it to the same result as a run that was never killed, and the
// next save clears the leftover.
TEST_F(CheckpointCli, WriteKilledMidwayLeavesThePreviousCheckpoint) {
  const std::string args = "--set train.steps=6 --set checkpoint.every=2";
  Outcome killed = train("run", args, 1, "RINGTRAIN_TEST_KILL_DURING_SAVE=4");
  EXPECT_NE(killed.code, 0) << killed.output;
  EXPECT_TRUE(contains(killed.output, {"step 3/6", "checkpoint step 2 -> "}));  // killed saving step 4, before its line
  EXPECT_EQ(killed.output.find("checkpoint step 4"), std::string::npos) << killed.output;
  const fs::path root = run_dir("run") + "/checkpoints";
  EXPECT_TRUE(fs::exists(root / ".tmp_step_00000004" / "model.safetensors"));
  EXPECT_FALSE(fs::exists(root / ".tmp_step_00000004" / "manifest.pb"));
  EXPECT_FALSE(fs::exists(root / "step_00000004"));
  std::string latest;
  std::ifstream(root / "latest") >> latest;
  EXPECT_EQ(latest, "step_00000002");
  Outcome inspect = rt_test::run_command(rt_test::program(RINGTRAIN_BIN) + " inspect " + root.string());
  EXPECT_EQ(inspect.code, 0) << inspect.output;

  Outcome resumed = train("run", args + " --resume");
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_TRUE(contains(resumed.output, {"resuming from " + ckpt("run", 2) + ": step 2"}));
  EXPECT_FALSE(fs::exists(root / ".tmp_step_00000004"));
  ASSERT_EQ(train("whole", kSixSteps).code, 0);
  EXPECT_TRUE(same_state(ckpt("whole", 6), ckpt("run", 6)));
  EXPECT_EQ(losses("run"), losses("whole"));
}

// SIGTERM to one rank of an mpirun job (as Slurm preemption signals the tasks): every rank finishes its step,
// the checkpoint is saved, the job exits 0; the checkpoint verifies and the run resumes from it.
TEST_F(CheckpointCli, SigtermSavesAndExitsUnderMpirun) {
  rt_test::BackgroundCommand job(
      rt_test::mpiexec() +
          " -n 2 --oversubscribe --allow-run-as-root --mca btl self,vader "
          "--bind-to none " +
          rt_test::program(RINGTRAIN_BIN) + " train --config " + kTiny +
          " --set train.steps=100000 --set checkpoint.every=0 --set parallel.cp=2 --set log.every=1"
          " --set log.dir=" +
          run_dir("run"),
      run_dir("output.txt"));
  ASSERT_TRUE(job.wait_for_output("step 1/100000", 120)) << job.output();
  std::vector<pid_t> ranks = job.children();
  ASSERT_EQ(ranks.size(), 2u) << job.output();
  ASSERT_EQ(kill(ranks.back(), SIGTERM), 0);
  const int code = job.wait(120);
  const std::string output = job.output();
  ASSERT_EQ(code, 0) << output;
  EXPECT_TRUE(contains(output, {"ringtrain: SIGTERM received: every rank finished step ", "checkpoint step "}));
  std::vector<std::string> saved = checkpoint_candidates(run_dir("run") + "/checkpoints");
  ASSERT_EQ(saved.size(), 1u);
  const int64_t step = checkpoint_read(saved[0]).info().step;
  EXPECT_TRUE(contains(output, {"step " + std::to_string(step) + "/100000 |",
                                "every rank finished step " + std::to_string(step) + ","}));
  EXPECT_EQ(output.find("step " + std::to_string(step + 1) + "/"), std::string::npos) << output;

  Outcome resumed = train("run", "--set train.steps=" + std::to_string(step + 1) + " --set parallel.cp=2 --resume", 2);
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_TRUE(
      contains(resumed.output, {"step " + std::to_string(step) + ",", "step " + std::to_string(step + 1) + "/"}));
}

// Ctrl-C on a single process does the same.
TEST_F(CheckpointCli, SigintSavesAndExits) {
  rt_test::BackgroundCommand job(
      rt_test::program(RINGTRAIN_BIN) + " train --config " + kTiny +
          " --set train.steps=100000 --set checkpoint.every=0 --set log.every=1 --set log.dir=" + run_dir("run"),
      run_dir("output.txt"));
  ASSERT_TRUE(job.wait_for_output("step 2/100000", 120)) << job.output();
  ASSERT_EQ(kill(job.pid(), SIGINT), 0);
  ASSERT_EQ(job.wait(120), 0) << job.output();
  EXPECT_TRUE(contains(job.output(), {"ringtrain: SIGINT received"}));
  EXPECT_EQ(checkpoint_candidates(run_dir("run") + "/checkpoints").size(), 1u);
}

TEST_F(CheckpointCli, InspectPrintsAndVerifies) {
  ASSERT_EQ(train("run", "--set train.steps=2 --set parallel.cp=2", 2).code, 0);
  Outcome o = rt_test::run_command(rt_test::program(RINGTRAIN_BIN) + " inspect " + ckpt("run", 2));
  EXPECT_EQ(o.code, 0) << o.output;
  EXPECT_TRUE(contains(o.output, {"step        2 (optimizer step 2), 1024 tokens seen", "copy: next global sequence 16",
                                  "data: splitmix64 seed 1234 counter 16", "2 ranks = dp 1 x cp 2", "hidden_size: 128",
                                  "ok   config.json", "model.layers.1.mlp.down_proj.weight.exp_avg_sq",
                                  "verified: 3 files and 61 tensors, every checksum matches"}));
  const std::string optimizer = ckpt("run", 2) + "/optimizer.safetensors";
  flip_byte(optimizer, fs::file_size(optimizer) - 100);
  o = rt_test::run_command(rt_test::program(RINGTRAIN_BIN) + " inspect " + ckpt("run", 2));
  EXPECT_EQ(o.code, 2) << o.output;
  EXPECT_TRUE(contains(o.output, {"BAD  optimizer.safetensors model.norm.weight.exp_avg_sq",
                                  "ringtrain: error: " + optimizer + ": tensor model.norm.weight.exp_avg_sq"}));
  o = rt_test::run_command(rt_test::program(RINGTRAIN_BIN) + " inspect " + run_dir("nowhere"));
  EXPECT_EQ(o.code, 2) << o.output;
}

// A trained checkpoint, read by the standard-library Python reader: Hugging Face names and shapes for
// config.json, and the values ringtrain's reader sees.
TEST_F(CheckpointCli, IndependentReaderOnATrainedCheckpoint) {
  if (!rt_test::runnable(rt_test::python3())) GTEST_SKIP() << "no python3 at " << rt_test::python3();
  ASSERT_EQ(
      train("run", "--set train.steps=2 --set model.num_key_value_heads=2 --set model.tie_word_embeddings=false").code,
      0);
  Outcome o = rt_test::run_command(rt_test::python3() + " " + rt_test::source_dir() +
                                   "/tests/checkpoints/read_safetensors.py " + ckpt("run", 2));
  ASSERT_EQ(o.code, 0) << o.output;
  const nlohmann::json read = nlohmann::json::parse(o.output);
  Checkpoint c = checkpoint_read(ckpt("run", 2));
  ASSERT_TRUE(read[kModelFile]["tensors"].contains("lm_head.weight"));
  for (const char* file : {kModelFile, kOptimizerFile})
    for (const auto& [name, shape] : c.tensors(file)) {
      if (name == "step") continue;
      const float* data = c.f32(file, name);
      double sum = 0;
      for (int64_t i = 0; i < shape_numel(shape); ++i) sum += data[i];
      EXPECT_EQ(read[file]["tensors"][name]["sum"].get<double>(), sum) << name;
    }
  EXPECT_EQ(read[kOptimizerFile]["tensors"]["step"]["first"].get<double>(), 2.0);
}

}  // namespace
}  // namespace rt
