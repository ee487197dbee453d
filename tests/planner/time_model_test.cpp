// The planner's time and memory models make sense: more bandwidth never predicts a slower step, more ranks never more
// memory per rank, recomputation trades time for memory, the ring's hiding threshold is where exposure starts, and the
// search returns only layouts of the devices asked for, fitting ones fastest first.
#include "planner/time_model.h"

#include <gtest/gtest.h>

#include "core/check.h"
#include "planner/layout_search.h"
#include "planner/memory_model.h"

namespace {

using rt::ClusterSpec;
using rt::PlanLayout;

rt::Measured spec(double v) { return {v, "spec: test"}; }

// A GPU cluster of 8-device nodes (numbers of the H100 class; exact values do not matter here).
ClusterSpec gpu_cluster(double inter_gbs = 50, double intra_gbs = 450) {
  ClusterSpec c;
  c.name = "test";
  c.kind = "cuda";
  c.nodes = 64;
  c.devices_per_node = 8;
  c.memory_gib = spec(80);
  c.gemm_tflops_fp32 = spec(50);
  c.gemm_tflops_bf16 = spec(600);
  c.attention_tflops_fp32 = spec(40);
  c.attention_tflops_bf16 = spec(300);
  c.memory_bandwidth_gbs = spec(3000);
  c.runtime_overhead_mib = spec(1500);
  c.intra_node = {spec(intra_gbs), spec(3)};
  c.inter_node = {spec(inter_gbs), spec(5)};
  c.has_inter_node = true;
  return c;
}

PlanLayout reference(int64_t seq, int64_t cp, int64_t dp = 1) {
  PlanLayout l;  // the default model: hidden 256, 4 layers, 4 heads
  l.seq_len = rt::plan_padded_length(seq, cp, true, 1);
  l.cp = cp;
  l.dp = dp;
  l.batch_size = dp;
  l.cuda = true;
  return l;
}

PlanLayout llama_1b(int64_t seq, int64_t cp, int64_t dp = 1) {
  PlanLayout l = reference(seq, cp, dp);
  l.model.hidden_size = 2048;
  l.model.num_hidden_layers = 16;
  l.model.num_attention_heads = 32;
  l.model.num_key_value_heads = 8;
  l.model.intermediate_size = 8192;
  l.model.vocab_size = 128256;
  l.model.tie_word_embeddings = true;
  return l;
}

TEST(TimeModel, MoreBandwidthNeverPredictsASlowerStep) {
  for (int64_t cp : {2, 8, 16, 64})
    for (int64_t seq : {4096, 65536, 1 << 20}) {
      double previous = 1e300;
      for (double gbs : {0.125, 1.0, 12.5, 50.0, 400.0}) {
        const ClusterSpec c = gpu_cluster(gbs, std::max(gbs, 450.0));
        const rt::PlannedLayout p = rt::plan_layout(llama_1b(seq, cp), c, 0);
        EXPECT_LE(p.time.step_s, previous * (1 + 1e-12)) << "cp " << cp << " seq " << seq << " at " << gbs << " GB/s";
        previous = p.time.step_s;
      }
    }
}

TEST(TimeModel, MoreRanksNeverMoreMemoryPerRank) {
  const ClusterSpec c = gpu_cluster();
  for (int64_t seq : {8192, 131072}) {
    int64_t previous = INT64_MAX;
    for (int64_t cp : {1, 2, 4, 8, 16, 32}) {
      const rt::PlannedLayout p = rt::plan_layout(reference(seq, cp), c, 0);
      EXPECT_LE(p.memory.total(), previous) << "seq " << seq << " cp " << cp;
      previous = p.memory.total();
    }
  }
}

TEST(TimeModel, LongerSequencesCostMoreTimeAndMemory) {
  const ClusterSpec c = gpu_cluster();
  rt::PlannedLayout prev = rt::plan_layout(reference(4096, 4), c, 0);
  for (int64_t seq : {8192, 16384, 65536, 262144}) {
    const rt::PlannedLayout p = rt::plan_layout(reference(seq, 4), c, 0);
    EXPECT_GT(p.time.step_s, prev.time.step_s);
    EXPECT_GT(p.memory.total(), prev.memory.total());
    prev = p;
  }
}

TEST(TimeModel, RecomputationTradesTimeForMemoryAndBf16IsNotSlower) {
  const ClusterSpec c = gpu_cluster();
  PlanLayout l = llama_1b(32768, 4);
  const rt::PlannedLayout none = rt::plan_layout(l, c, 0);
  l.recompute = true;
  const rt::PlannedLayout full = rt::plan_layout(l, c, 0);
  EXPECT_LT(full.memory.term("activations"), none.memory.term("activations"));
  EXPECT_GT(full.time.step_s, none.time.step_s);
  l.recompute = false;
  l.bf16 = true;
  const rt::PlannedLayout bf16 = rt::plan_layout(l, c, 0);
  EXPECT_LT(bf16.time.step_s, none.time.step_s);
  EXPECT_LT(bf16.time.ring_comm_s, none.time.ring_comm_s);  // K/V blocks travel in bf16
}

TEST(TimeModel, TheRingIsExposedExactlyBelowItsThreshold) {
  ClusterSpec c = gpu_cluster(1.0);  // a slow inter-node link: the threshold lies at tens of thousands of tokens
  const int64_t cp = 16;             // two nodes: the ring crosses them
  const rt::PlannedLayout probe = rt::plan_layout(reference(cp * 4096, cp), c, 0);
  ASSERT_TRUE(probe.placement.ring_crosses_nodes);
  const int64_t threshold = probe.ring_min_tokens;
  ASSERT_GT(threshold, 64);
  const rt::PlannedLayout above = rt::plan_layout(reference(cp * (threshold + 64), cp), c, 0);
  const rt::PlannedLayout below = rt::plan_layout(reference(cp * (threshold - 64) / 2 * 2, cp), c, 0);
  // Above it only the final dK/dV delivery of each layer stays exposed; below, the steps' exchanges show.
  EXPECT_GT(above.time.ring_delivery_s, 0);
  EXPECT_NEAR(above.time.ring_exposed_s, above.time.ring_delivery_s, 1e-12);
  EXPECT_GT(below.time.ring_exposed_s, below.time.ring_delivery_s * (1 + 1e-9));
  EXPECT_TRUE(above.ring_hidden());
  EXPECT_FALSE(below.ring_hidden());
  // Twice the bandwidth halves (about) the threshold: it is F / B.
  c.inter_node.bandwidth_gbs.value *= 2;
  const int64_t faster = rt::plan_layout(reference(cp * 4096, cp), c, 0).ring_min_tokens;
  EXPECT_NEAR(static_cast<double>(faster), threshold / 2.0, threshold * 0.05);
}

TEST(TimeModel, PlacementFollowsTheNodes) {
  const ClusterSpec c = gpu_cluster();
  EXPECT_FALSE(rt::plan_layout(reference(65536, 8), c, 0).placement.ring_crosses_nodes);
  const rt::PlannedLayout p = rt::plan_layout(reference(65536, 16), c, 0);
  EXPECT_TRUE(p.placement.ring_crosses_nodes);
  EXPECT_EQ(p.placement.nodes, 2);
  EXPECT_EQ(p.time.ring_link, "inter_node");
  EXPECT_THROW(rt::plan_layout(reference(65536, 1024), c, 0), rt::UserError);  // 513 nodes' worth
}

// A CPU rank of several threads gets the cluster's thread_efficiency per core; 1-thread ranks and GPUs do not.
TEST(TimeModel, ThreadEfficiencyScalesOnlyRanksOfSeveralThreads) {
  ClusterSpec c = gpu_cluster();
  c.kind = "cpu";
  c.nodes = 1;
  c.devices_per_node = 4;
  c.gemm_tflops_fp32 = c.attention_tflops_fp32 = spec(0.05);
  c.thread_efficiency.value = 0.8;
  PlanLayout l = reference(8192, 1);
  l.cuda = false;
  const rt::PlannedLayout threaded = rt::plan_layout(l, c, 0);  // 1 rank x 4 threads
  EXPECT_EQ(threaded.placement.cores_per_rank, 4);
  EXPECT_DOUBLE_EQ(threaded.placement.compute_cores, 3.2);
  EXPECT_DOUBLE_EQ(rt::plan_layout(l, c, 1).placement.compute_cores, 1.0);  // train.threads 1
  l = reference(8192, 4);
  l.cuda = false;
  EXPECT_DOUBLE_EQ(rt::plan_layout(l, c, 0).placement.compute_cores, 1.0);  // 4 ranks x 1 thread
  c.thread_efficiency.value = 1.0;
  l = reference(8192, 1);
  l.cuda = false;
  EXPECT_NEAR(rt::plan_layout(l, c, 0).time.gemm_s, threaded.time.gemm_s * 0.8, 1e-12 * threaded.time.gemm_s);
}

TEST(LayoutSearch, OnlyLayoutsOfTheDevicesFittingOnesFastestFirst) {
  const ClusterSpec c = gpu_cluster();
  PlanLayout base = llama_1b(131072, 1);
  base.batch_size = 8;
  const std::vector<rt::PlannedLayout> all = rt::plan_search(base, 131072, 64, c, 0);
  ASSERT_FALSE(all.empty());
  bool fitting = true;
  double previous = 0;
  for (const rt::PlannedLayout& p : all) {
    EXPECT_EQ(p.layout.cp * p.layout.dp * p.layout.ulysses, 64);
    EXPECT_EQ(base.batch_size % p.layout.dp, 0);
    if (!p.fits()) {
      fitting = false;
      continue;
    }
    EXPECT_TRUE(fitting) << "a fitting layout after one that does not fit";
    EXPECT_GE(p.time.step_s, previous);
    previous = p.time.step_s;
  }
  EXPECT_TRUE(all.front().fits());
}

TEST(MemoryModel, TermsScaleWithTheirCauses) {
  const ClusterSpec c = gpu_cluster();
  const rt::PlannedLayout a = rt::plan_layout(reference(16384, 2), c, 0);
  const rt::PlannedLayout b = rt::plan_layout(reference(32768, 2), c, 0);
  EXPECT_EQ(a.memory.term("parameters"), b.memory.term("parameters"));
  EXPECT_EQ(a.memory.term("optimizer"), 2 * a.memory.term("parameters"));
  EXPECT_NEAR(static_cast<double>(b.memory.term("activations")), 2.0 * a.memory.term("activations"),
              0.01 * b.memory.term("activations"));
  EXPECT_EQ(a.memory.term("all_to_all_buffers"), 0);
  EXPECT_GT(a.memory.term("ring_buffers"), 0);
  EXPECT_EQ(rt::plan_layout(reference(16384, 1), c, 0).memory.term("ring_buffers"), 0);
}

}  // namespace
