// Where the ranks run: the nodes, the ranks on each, and the nodes each cp ring and Ulysses group spans (printed at
// start).
#pragma once
#include <string>
#include <vector>

namespace rt {

struct Topology {
  int cp = 1, dp = 1, ulysses = 1;
  std::vector<std::string> nodes;               // host names, in the order of their first rank
  std::vector<std::vector<int>> node_ranks;     // world ranks on each node
  std::vector<std::vector<int>> ring_nodes;     // for each cp ring (dp index * ulysses + Ulysses rank): its nodes
  std::vector<std::vector<int>> ulysses_nodes;  // for each Ulysses group (dp index * cp + cp rank): its nodes
};

// From every world rank's host name (rank r at host_of_rank[r]) and the mesh sizes (parallel/mesh.h: world rank =
// (dp_rank * cp + cp_rank) * ulysses + ulysses_rank).
Topology topology_make(const std::vector<std::string>& host_of_rank, int cp, int dp, int ulysses = 1);

// One line: "topology | 2 nodes: rtc-node0 (ranks 0-1), rtc-node1 (ranks 2-3) | cp rings: ranks 0-1 on rtc-node0, ..."
std::string topology_describe(const Topology& topology);

// "" when every ring is inside a node or has to span nodes (cp exceeds every node's ranks); else one line saying
// which ring crosses nodes although the nodes hold enough ranks for whole rings, and the mapping that fixes it. With
// Ulysses the same for the Ulysses groups (the ring is meant to cross nodes then; the all-to-all is not).
std::string topology_warning(const Topology& topology);

// "ranks 0-3", "ranks 0, 2", "rank 5": world ranks as a short list.
std::string ranks_text(const std::vector<int>& ranks);

}  // namespace rt
