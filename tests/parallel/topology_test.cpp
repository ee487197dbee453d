// Topology of a job from its ranks' host names: nodes, rings inside or across nodes, and when to warn.
#include "parallel/topology.h"

#include <gtest/gtest.h>

namespace rt {
namespace {

std::vector<std::string> hosts(std::initializer_list<const char*> names) { return {names.begin(), names.end()}; }

TEST(Topology, RingsInsideNodesNeedNoWarning) {
  const Topology t = topology_make(hosts({"a", "a", "b", "b"}), 2, 2);
  ASSERT_EQ(t.nodes, hosts({"a", "b"}));
  EXPECT_EQ(t.node_ranks[1], (std::vector<int>{2, 3}));
  EXPECT_EQ(topology_describe(t),
            "topology | 2 nodes: a (ranks 0-1), b (ranks 2-3) | cp rings: ranks 0-1 on a, ranks 2-3 on b");
  EXPECT_EQ(topology_warning(t), "");
}

// Ranks dealt round-robin over the nodes (mpirun --map-by node): every ring crosses although each node could hold one.
TEST(Topology, RingAcrossNodesThatCouldHoldItIsWarnedWithTheFix) {
  const Topology t = topology_make(hosts({"a", "b", "a", "b"}), 2, 2);
  EXPECT_EQ(topology_describe(t),
            "topology | 2 nodes: a (ranks 0, 2), b (ranks 1, 3) | cp rings: ranks 0-1 across a "
            "and b, ranks 2-3 across a and b");
  const std::string w = topology_warning(t);
  EXPECT_NE(w.find("cp ring 0 (ranks 0-1) spans a and b"), std::string::npos) << w;
  EXPECT_NE(w.find("--map-by ppr:2:node"), std::string::npos) << w;
}

// 3 ranks a node and cp 2: ring 1 (ranks 2-3) has to straddle unless the launch uses 2 a node; the fix names ppr:2.
TEST(Topology, RingsThatDoNotDivideANodeAreWarned) {
  const Topology t = topology_make(hosts({"a", "a", "a", "b", "b", "b"}), 2, 3);
  const std::string w = topology_warning(t);
  EXPECT_NE(w.find("cp ring 1 (ranks 2-3) spans a and b"), std::string::npos) << w;
  EXPECT_NE(w.find("ppr:2:node"), std::string::npos) << w;
}

// cp larger than any node's ranks: spanning is the only way, so it is described but not warned about.
TEST(Topology, RingLargerThanANodeSpansWithoutWarning) {
  const Topology t = topology_make(hosts({"a", "a", "b", "b"}), 4, 1);
  EXPECT_NE(topology_describe(t).find("cp rings: ranks 0-3 across a and b"), std::string::npos);
  EXPECT_EQ(topology_warning(t), "");
  EXPECT_EQ(topology_describe(topology_make(hosts({"a"}), 1, 1)),
            "topology | 1 node: a (rank 0) | no cp rings (parallel.cp = 1)");
}

// 2-D (ulysses 2, cp 2) on two nodes of 2: the Ulysses groups inside the nodes, the rings across them, as intended:
// no warning. Dealt round-robin, the groups cross the network: warned, with the fix.
TEST(Topology, UlyssesGroupsInsideNodesRingsAcross) {
  const Topology t = topology_make(hosts({"a", "a", "b", "b"}), 2, 1, 2);
  EXPECT_EQ(topology_describe(t),
            "topology | 2 nodes: a (ranks 0-1), b (ranks 2-3) | Ulysses groups: ranks 0-1 on a, ranks 2-3 on b | "
            "cp rings: ranks 0, 2 across a and b, ranks 1, 3 across a and b");
  EXPECT_EQ(topology_warning(t), "");
  const std::string w = topology_warning(topology_make(hosts({"a", "b", "a", "b"}), 2, 1, 2));
  EXPECT_NE(w.find("Ulysses group 0 (ranks 0-1) spans a and b"), std::string::npos) << w;
  EXPECT_NE(w.find("--map-by ppr:2:node"), std::string::npos) << w;
  EXPECT_EQ(topology_describe(topology_make(hosts({"a", "a"}), 1, 1, 2)),
            "topology | 1 node: a (ranks 0-1) | Ulysses groups: ranks 0-1 on a | no cp rings (parallel.cp = 1)");
}

// Many rings: the line names four and counts the rest.
TEST(Topology, ManyRingsAreSummarised) {
  std::vector<std::string> h;
  for (int node = 0; node < 8; ++node)
    for (int r = 0; r < 4; ++r) h.push_back(std::string(1, 'n').append(std::to_string(node)));
  const std::string line = topology_describe(topology_make(h, 4, 8));
  EXPECT_NE(line.find("n0 (ranks 0-3), n1 (ranks 4-7), n2 (ranks 8-11), n3 (ranks 12-15) and 4 more"),
            std::string::npos)
      << line;
  EXPECT_NE(line.find("and 4 more (8 of 8 inside one node)"), std::string::npos) << line;
}

}  // namespace
}  // namespace rt
