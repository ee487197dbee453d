// Multi-node training on the local cluster (launch/cluster.sh: 2 network-namespace nodes x 2 slots, TCP between them):
// layouts that keep the ring inside a node or send it across the network match the 1-rank run; the veth byte counters
// show what crossed; a checkpoint of the 2-node job resumes on one node. Needs the ctest fixture that brings the
// cluster up (RINGTRAIN_CLUSTER=rtct); skips when it is not up (no root).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "checkpoints/checkpoint.h"
#include "core/tensor.h"
#include "tests/cluster/cluster_harness.h"

namespace rt {
namespace {

namespace fs = std::filesystem;
using rt_test::Outcome;

// Reduction order changes a loss by ~1e-8 relative between rank counts (tests/checkpoints/checkpoint_cli_test.cpp);
// consecutive steps differ by ~1e-2, so a layout that dropped or mixed up a token would miss this by far.
constexpr double kLossTolerance = 1e-5;
// Parameters after 6 AdamW steps: reduction-order differences reach the weights through Adam's normalisation as
// ~1e-6 of their scale (measured ~1e-7 here); a wrong gradient moves them by ~lr = 3e-3.
constexpr double kParameterTolerance = 1e-4;

// A job whose ring traffic dwarfs its gradients (57,536 parameters, 2048 tokens a sequence), so the byte counters tell
// which of the two crossed the network.
const std::string kModel =
    "--set model.hidden_size=64 model.num_hidden_layers=1 model.num_attention_heads=2 model.num_key_value_heads=2 "
    "model.intermediate_size=128 train.seq_len=2048 train.batch_size=4 train.steps=6 train.threads=1 "
    "parallel.check_every=1 checkpoint.every=3";
constexpr int64_t kParams = 57536, kSteps = 6, kSeq = 2048, kBatch = 4, kKvHeads = 2, kHeadDim = 32, kLayers = 1;

std::map<int64_t, double> losses(const fs::path& run) {
  std::map<int64_t, double> out;
  std::ifstream in(run / "metrics.jsonl");
  for (std::string line; std::getline(in, line);) {
    const nlohmann::json r = nlohmann::json::parse(line);
    out[r["step"].get<int64_t>()] = r["loss"].get<double>();
  }
  return out;
}

::testing::AssertionResult same_losses(const fs::path& a, const fs::path& b, int64_t first_step = 1) {
  const auto x = losses(a), y = losses(b);
  for (int64_t step = first_step; step <= kSteps; ++step) {
    if (!x.count(step) || !y.count(step)) return ::testing::AssertionFailure() << "step " << step << " missing";
    const double rel = std::abs(x.at(step) - y.at(step)) / std::abs(y.at(step));
    if (rel > kLossTolerance)
      return ::testing::AssertionFailure() << "step " << step << ": loss " << x.at(step) << " vs " << y.at(step);
  }
  return ::testing::AssertionSuccess();
}

// Largest |a - b| over each tensor of model.safetensors, relative to the tensor's largest |b|.
double weights_difference(const fs::path& a, const fs::path& b) {
  Checkpoint x = checkpoint_read(a.string()), y = checkpoint_read(b.string());
  double worst = 0;
  for (const auto& [name, shape] : y.tensors(kModelFile)) {
    const float *p = x.f32(kModelFile, name), *q = y.f32(kModelFile, name);
    if (!p || !q) return INFINITY;
    double diff = 0, scale = 1e-30;
    for (int64_t i = 0; i < shape_numel(shape); ++i) {
      diff = std::max(diff, std::abs(static_cast<double>(p[i]) - q[i]));
      scale = std::max(scale, std::abs(static_cast<double>(q[i])));
    }
    worst = std::max(worst, diff / scale);
  }
  std::printf("weights differ by at most %.2e of a tensor's largest weight\n", worst);
  return worst;
}

class ClusterTraining : public rt_test::ClusterTest {};

// The reference: the same global batch on one rank, outside the cluster.
fs::path one_rank_run(const fs::path& dir) {
  const fs::path run = dir / "one";
  const Outcome o = rt_test::run_command("timeout 300 " + std::string(RINGTRAIN_BIN) + " train --config " +
                                         rt_test::kTiny + " " + kModel + " log.every=1 log.dir=" + run.string());
  EXPECT_EQ(o.code, 0) << o.output;
  return run;
}

// (a) cp = 2 inside each node, dp = 2 across: only the gradient all-reduce crosses the network.
TEST_F(ClusterTraining, DataParallelAcrossNodesMatchesOneRank) {
  const fs::path one = one_rank_run(dir_), run = dir_ / "cp2dp2";
  const auto before = link_bytes(node(0));
  const Outcome o = train(run, kModel + " parallel.cp=2 parallel.dp=2");
  const auto after = link_bytes(node(0));
  ASSERT_EQ(o.code, 0) << o.output;
  EXPECT_TRUE(
      rt_test::contains(o.output, {"topology | 2 nodes: " + node(0) + " (ranks 0-1), " + node(1) +
                                   " (ranks 2-3) | cp rings: ranks 0-1 on " + node(0) + ", ranks 2-3 on " + node(1)}));
  EXPECT_TRUE(same_losses(run, one));
  EXPECT_LT(weights_difference(run / "checkpoints" / checkpoint_dir_name(kSteps),
                               one / "checkpoints" / checkpoint_dir_name(kSteps)),
            kParameterTolerance);
  // The all-reduce moved every gradient into and out of node0 each step (TCP, through its veth) ...
  const int64_t gradients = kParams * 4 * kSteps;
  const int64_t sent = after.first - before.first, received = after.second - before.second;
  EXPECT_GE(sent, gradients);
  EXPECT_GE(received, gradients);
  // ... but the ring did not: had its forward exchanges alone crossed (a K/V block of 1024 tokens per micro-batch per
  // step), the link would have carried more than twice the gradients.
  const int64_t ring_forward = 2 * (kSeq / 2) * kKvHeads * kHeadDim * 4 * kLayers * (kBatch / 2) * kSteps;
  ASSERT_GT(ring_forward, 2 * gradients + (256 << 10));
  EXPECT_LT(sent, 2 * gradients + (256 << 10)) << "the ring inside node0 went over TCP (shared memory expected)";
}

// (b) cp = 4 over both nodes: the ring crosses the network twice per turn (rank 1 -> 2 and 3 -> 0).
TEST_F(ClusterTraining, RingAcrossNodesMatchesOneRank) {
  const fs::path one = one_rank_run(dir_), run = dir_ / "cp4";
  const auto before = link_bytes(node(0));
  const Outcome o = train(run, kModel + " parallel.cp=4");
  const auto after = link_bytes(node(0));
  ASSERT_EQ(o.code, 0) << o.output;
  EXPECT_TRUE(rt_test::contains(o.output, {"cp rings: ranks 0-3 across " + node(0) + " and " + node(1)}));
  EXPECT_EQ(o.output.find("warning: cp ring"), std::string::npos) << "no node holds 4 ranks: spanning is expected";
  EXPECT_TRUE(same_losses(run, one));
  EXPECT_LT(weights_difference(run / "checkpoints" / checkpoint_dir_name(kSteps),
                               one / "checkpoints" / checkpoint_dir_name(kSteps)),
            kParameterTolerance);
  // Forward alone: cp - 1 = 3 exchanges of a 512-token K/V block per micro-batch per step leave node0 by rank 1 -> 2
  // and arrive by rank 3 -> 0.
  const int64_t ring_forward = 3 * 2 * (kSeq / 4) * kKvHeads * kHeadDim * 4 * kLayers * kBatch * kSteps;
  EXPECT_GE(after.first - before.first, ring_forward);
  EXPECT_GE(after.second - before.second, ring_forward);
}

// (d) 2-D: Ulysses groups of 2 inside the nodes, the ring (cp = 2) across them: the all-to-all stays on shared memory,
// the ring's K/V blocks cross the network, and the losses are one rank's.
TEST_F(ClusterTraining, UlyssesInsideNodesRingAcrossMatchesOneRank) {
  const fs::path one = one_rank_run(dir_), run = dir_ / "cp2u2";
  const auto before = link_bytes(node(0));
  const Outcome o = train(run, kModel + " parallel.cp=2 parallel.ulysses=2");
  const auto after = link_bytes(node(0));
  ASSERT_EQ(o.code, 0) << o.output;
  EXPECT_TRUE(rt_test::contains(o.output, {"Ulysses groups: ranks 0-1 on " + node(0) + ", ranks 2-3 on " + node(1),
                                           "cp rings: ranks 0, 2 across " + node(0) + " and " + node(1)}));
  EXPECT_EQ(o.output.find("warning:"), std::string::npos) << o.output;
  EXPECT_TRUE(same_losses(run, one));
  EXPECT_LT(weights_difference(run / "checkpoints" / checkpoint_dir_name(kSteps),
                               one / "checkpoints" / checkpoint_dir_name(kSteps)),
            kParameterTolerance);
  // Forward alone, one of the two rings: a K/V block of 1024 gathered tokens and one K/V head per micro-batch per step.
  const int64_t ring_forward = 2 * (kSeq / 2) * (kKvHeads / 2) * kHeadDim * 4 * kLayers * kBatch * kSteps;
  EXPECT_GE(after.first - before.first, ring_forward);
  EXPECT_GE(after.second - before.second, ring_forward);
}

// (c) A checkpoint written by the 2-node job resumes on one node (one rank there) and continues the same curve.
TEST_F(ClusterTraining, CheckpointFromTwoNodesResumesOnOneNode) {
  const fs::path one = one_rank_run(dir_), run = dir_ / "two_nodes", resumed = dir_ / "one_node";
  ASSERT_EQ(train(run, kModel + " parallel.cp=2 parallel.dp=2").code, 0);
  const fs::path ckpt = run / "checkpoints" / checkpoint_dir_name(3);
  const Outcome o = on_node(0, "timeout 300 " + std::string(RINGTRAIN_BIN) + " train --config " + rt_test::kTiny + " " +
                                   kModel + " log.every=1 log.dir=" + resumed.string() + " --resume " + ckpt.string());
  ASSERT_EQ(o.code, 0) << o.output;
  EXPECT_TRUE(rt_test::contains(o.output, {"resuming from " + ckpt.string() + ": step 3", "now 1 rank", "step 6/6",
                                           "topology | 1 node: " + node(0)}));
  EXPECT_TRUE(same_losses(resumed, one, 4));
  EXPECT_LT(weights_difference(resumed / "checkpoints" / checkpoint_dir_name(kSteps),
                               one / "checkpoints" / checkpoint_dir_name(kSteps)),
            kParameterTolerance);
}

// `ringtrain calibrate --hostfile` from the first node (mpirun there starts its daemons with the cluster's agent,
// 2 ranks per node): the cluster file it writes has 2 nodes and the link tc shapes to 1 Gbit/s (0.125 GB/s), while
// shared memory inside a node is far faster. The planner reads the file back.
TEST_F(ClusterTraining, CalibrateAcrossNodesMeasuresTheShapedLink) {
  ASSERT_EQ(rt_test::cluster("shape 1gbit").code, 0);
  const fs::path file = dir_ / "cluster.yaml";
  const Outcome hostfile = rt_test::cluster("hostfile");
  ASSERT_EQ(hostfile.code, 0) << hostfile.output;
  const std::string hf = hostfile.output.substr(0, hostfile.output.find('\n'));
  const Outcome o = on_node(0, "timeout 200 " + rt_test::kClusterEnv + " " + std::string(RINGTRAIN_BIN) +
                                   " calibrate --out " + file.string() + " --hostfile " + hf + " --agent \"" +
                                   rt_test::kClusterScript + " agent\"");
  rt_test::cluster("shape off");
  ASSERT_EQ(o.code, 0) << o.output;
  const Outcome plan = rt_test::run_command(std::string(RINGTRAIN_BIN) + " plan --cluster " + file.string() +
                                            " --set parallel.cp=2 --set train.seq_len=4096 --json");
  ASSERT_EQ(plan.code, 0) << plan.output;
  std::ifstream in(file);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_TRUE(rt_test::contains(text, {"nodes: 2", "inter_node:", "ranks on 2 nodes"}));
  const auto value_after = [&](const std::string& section) {
    const size_t at = text.find("bandwidth_gbs: {value: ", text.find(section + ":"));
    return std::stod(text.substr(at + 23));
  };
  EXPECT_GT(value_after("inter_node"), 0.06);
  EXPECT_LT(value_after("inter_node"), 0.14);
  EXPECT_GT(value_after("intra_node"), 10 * value_after("inter_node"));
}

}  // namespace
}  // namespace rt
