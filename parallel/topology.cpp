// Topology of a job: nodes and ranks from the host names, the nodes of each cp ring, and the advice on mapping.
#include "parallel/topology.h"

#include <algorithm>

#include "core/check.h"

namespace rt {
namespace {

constexpr size_t kListed = 4;  // nodes or rings named in a line before "and N more"

std::string join_names(const std::vector<std::string>& items) {
  std::string s;
  for (size_t i = 0; i < items.size() && i < kListed; ++i) s += (i ? ", " : "") + items[i];
  if (items.size() > kListed) s += " and " + std::to_string(items.size() - kListed) + " more";
  return s;
}

// Ring (d, u) = ring d * ulysses + u: ranks (d cp + c) ulysses + u over c; Ulysses group g: ranks g ulysses + u.
std::vector<int> ring_ranks(const Topology& t, int ring) {
  std::vector<int> ranks;
  const int d = ring / t.ulysses, u = ring % t.ulysses;
  for (int c = 0; c < t.cp; ++c) ranks.push_back((d * t.cp + c) * t.ulysses + u);
  return ranks;
}
std::vector<int> ulysses_ranks(const Topology& t, int group) {
  std::vector<int> ranks;
  for (int u = 0; u < t.ulysses; ++u) ranks.push_back(group * t.ulysses + u);
  return ranks;
}

std::string nodes_text(const Topology& t, const std::vector<int>& node_ids) {
  std::vector<std::string> names;
  for (int n : node_ids) names.push_back(t.nodes[static_cast<size_t>(n)]);
  std::string s;
  for (size_t i = 0; i < names.size(); ++i) s += (i == 0 ? "" : i + 1 == names.size() ? " and " : ", ") + names[i];
  return s;
}

}  // namespace

std::string ranks_text(const std::vector<int>& ranks) {
  if (ranks.size() == 1) return "rank " + std::to_string(ranks[0]);
  bool consecutive = !ranks.empty();
  for (size_t i = 1; i < ranks.size(); ++i) consecutive = consecutive && ranks[i] == ranks[i - 1] + 1;
  if (consecutive) return "ranks " + std::to_string(ranks.front()) + "-" + std::to_string(ranks.back());
  if (ranks.size() > 6) return std::to_string(ranks.size()) + " ranks";
  std::string s = "ranks ";
  for (size_t i = 0; i < ranks.size(); ++i) s += (i ? ", " : "") + std::to_string(ranks[i]);
  return s;
}

Topology topology_make(const std::vector<std::string>& host_of_rank, int cp, int dp, int ulysses) {
  RT_CHECK(static_cast<int>(host_of_rank.size()) == cp * dp * ulysses,
           "one host name per rank of the cp x dp x ulysses mesh");
  Topology t;
  t.cp = cp;
  t.dp = dp;
  t.ulysses = ulysses;
  std::vector<int> node_of(host_of_rank.size());
  for (size_t r = 0; r < host_of_rank.size(); ++r) {
    auto it = std::find(t.nodes.begin(), t.nodes.end(), host_of_rank[r]);
    if (it == t.nodes.end()) {
      t.nodes.push_back(host_of_rank[r]);
      t.node_ranks.emplace_back();
      it = t.nodes.end() - 1;
    }
    node_of[r] = static_cast<int>(it - t.nodes.begin());
    t.node_ranks[static_cast<size_t>(node_of[r])].push_back(static_cast<int>(r));
  }
  auto nodes_of = [&](const std::vector<int>& ranks) {
    std::vector<int> nodes;
    for (int r : ranks)
      if (std::find(nodes.begin(), nodes.end(), node_of[static_cast<size_t>(r)]) == nodes.end())
        nodes.push_back(node_of[static_cast<size_t>(r)]);
    return nodes;
  };
  for (int ring = 0; ring < dp * ulysses; ++ring) t.ring_nodes.push_back(nodes_of(ring_ranks(t, ring)));
  for (int group = 0; group < dp * cp; ++group) t.ulysses_nodes.push_back(nodes_of(ulysses_ranks(t, group)));
  return t;
}

std::string topology_describe(const Topology& t) {
  std::vector<std::string> nodes;
  for (size_t n = 0; n < t.nodes.size(); ++n) nodes.push_back(t.nodes[n] + " (" + ranks_text(t.node_ranks[n]) + ")");
  std::string line = "topology | " + std::to_string(t.nodes.size()) + (t.nodes.size() == 1 ? " node: " : " nodes: ") +
                     join_names(nodes);
  auto groups_text = [&](const char* what, int count, const std::vector<std::vector<int>>& group_nodes,
                         std::vector<int> (*ranks_of)(const Topology&, int)) {
    std::vector<std::string> groups;
    int inside = 0;
    for (int g = 0; g < count; ++g) {
      const std::vector<int>& nodes = group_nodes[static_cast<size_t>(g)];
      inside += nodes.size() < 2;
      groups.push_back(ranks_text(ranks_of(t, g)) + (nodes.size() > 1 ? " across " : " on ") + nodes_text(t, nodes));
    }
    std::string text = std::string(" | ") + what + join_names(groups);
    if (count > static_cast<int>(kListed))
      text += " (" + std::to_string(inside) + " of " + std::to_string(count) + " inside one node)";
    return text;
  };
  if (t.ulysses > 1) line += groups_text("Ulysses groups: ", t.dp * t.cp, t.ulysses_nodes, ulysses_ranks);
  if (t.cp == 1) return line + " | no cp rings (parallel.cp = 1)";
  return line + groups_text("cp rings: ", t.dp * t.ulysses, t.ring_nodes, ring_ranks);
}

std::string topology_warning(const Topology& t) {
  size_t most = 0;
  for (const auto& ranks : t.node_ranks) most = std::max(most, ranks.size());
  if (t.nodes.size() >= 2 && t.ulysses > 1 && static_cast<int>(most) >= t.ulysses)
    for (int group = 0; group < t.dp * t.cp; ++group) {
      const std::vector<int>& nodes = t.ulysses_nodes[static_cast<size_t>(group)];
      if (nodes.size() < 2) continue;
      return "warning: Ulysses group " + std::to_string(group) + " (" + ranks_text(ulysses_ranks(t, group)) +
             ") spans " + nodes_text(t, nodes) + ", so its all-to-all crosses the network, though a node holds " +
             std::to_string(most) + " ranks; keep Ulysses groups inside nodes with a multiple of parallel.ulysses = " +
             std::to_string(t.ulysses) + " ranks per node, consecutive ranks together (mpirun --map-by ppr:" +
             std::to_string(static_cast<int>(most) / t.ulysses * t.ulysses) + ":node, or launch/run.sh)";
    }
  if (t.nodes.size() < 2 || t.cp == 1 || t.ulysses > 1) return "";
  if (static_cast<int>(most) < t.cp) return "";  // no node holds a whole ring: every ring has to span nodes
  for (int ring = 0; ring < t.dp; ++ring) {
    const std::vector<int>& nodes = t.ring_nodes[static_cast<size_t>(ring)];
    if (nodes.size() < 2) continue;
    const int per_node = static_cast<int>(most) / t.cp * t.cp;
    return "warning: cp ring " + std::to_string(ring) + " (" + ranks_text(ring_ranks(t, ring)) + ") spans " + nodes_text(t, nodes) + ", so its exchange crosses the network, though a node holds " +
           std::to_string(most) +
           " ranks; keep rings inside nodes with a multiple of parallel.cp = " + std::to_string(t.cp) +
           " ranks per node, consecutive ranks together (mpirun --map-by ppr:" + std::to_string(per_node) +
           ":node, or launch/run.sh, which maps so)";
  }
  return "";
}

}  // namespace rt
