// Where the ranks run: the nodes, the ranks on each, and the nodes each cp ring spans (printed at start).
#pragma once
#include <string>
#include <vector>

namespace rt {

struct Topology {
  int cp = 1, dp = 1;
  std::vector<std::string> nodes;            // host names, in the order of their first rank
  std::vector<std::vector<int>> node_ranks;  // world ranks on each node
  std::vector<std::vector<int>> ring_nodes;  // for each cp ring (dp index): the nodes its ranks are on
};

// From every world rank's host name (rank r at host_of_rank[r]) and the mesh sizes (cp ranks per ring, consecutive).
Topology topology_make(const std::vector<std::string>& host_of_rank, int cp, int dp);

// One line: "topology | 2 nodes: rtc-node0 (ranks 0-1), rtc-node1 (ranks 2-3) | cp rings: ranks 0-1 on rtc-node0, ..."
std::string topology_describe(const Topology& topology);

// "" when every ring is inside a node or has to span nodes (cp exceeds every node's ranks); else one line saying
// which ring crosses nodes although the nodes hold enough ranks for whole rings, and the mapping that fixes it.
std::string topology_warning(const Topology& topology);

// "ranks 0-3", "ranks 0, 2", "rank 5": world ranks as a short list.
std::string ranks_text(const std::vector<int>& ranks);

}  // namespace rt
