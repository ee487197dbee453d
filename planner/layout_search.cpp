// Planning one layout (memory, time, placement, the ring's hiding threshold) and searching over layouts.
#include "planner/layout_search.h"

#include <algorithm>
#include <cmath>

namespace rt {

namespace {

// parallel/ulysses_attention.cpp, ulysses_heads_problem: each rank's query heads read whole K/V heads.
bool ulysses_fits_heads(const ModelConfig& m, int64_t u) {
  const int64_t hq = m.num_attention_heads, hk = m.num_key_value_heads;
  return hq % u == 0 && (u <= hk ? hk % u == 0 : u % hk == 0);
}

std::vector<int64_t> divisors(int64_t n) {
  std::vector<int64_t> d;
  for (int64_t i = 1; i <= n; ++i)
    if (n % i == 0) d.push_back(i);
  return d;
}

}  // namespace

PlannedLayout plan_layout(const PlanLayout& layout, const ClusterSpec& cluster, int64_t threads) {
  PlannedLayout p;
  p.layout = layout;
  p.placement = plan_placement(layout, cluster, threads);
  p.layout.threads = p.placement.cores_per_rank;
  p.memory = plan_memory(p.layout, static_cast<int64_t>(cluster.runtime_overhead_mib.value * 1048576.0));
  p.time = plan_step_time(p.layout, cluster, p.placement);
  const double limit = cluster.memory_gib.value * 1073741824.0;
  p.memory_limit =
      static_cast<int64_t>(cluster.memory_per_node() ? limit / static_cast<double>(p.placement.ranks_per_node) : limit);
  if (layout.cp > 1) {
    const LinkSpec& link = p.placement.ring_crosses_nodes ? cluster.inter_node : cluster.intra_node;
    p.ring_min_tokens = plan_ring_min_tokens(p.layout, cluster, link, p.placement.compute_cores);
  }
  return p;
}

std::vector<PlannedLayout> plan_search(const PlanLayout& base, int64_t seq_len, int64_t devices,
                                       const ClusterSpec& cluster, int64_t threads) {
  std::vector<PlannedLayout> out;
  for (int64_t cp : divisors(devices))
    for (int64_t u : divisors(devices / cp)) {
      const int64_t dp = devices / cp / u;
      if (!ulysses_fits_heads(base.model, u) || base.batch_size % dp != 0) continue;
      const int64_t per_rank = base.batch_size / dp;
      for (int64_t micro : divisors(per_rank)) {
        if (micro > 8) break;
        for (bool recompute : {false, true})
          for (bool bf16 : {false, true}) {
            PlanLayout l = base;
            l.cp = cp;
            l.ulysses = u;
            l.dp = dp;
            l.micro_batch = micro;
            l.recompute = recompute;
            l.bf16 = bf16;
            l.seq_len = plan_padded_length(seq_len, cp, l.zigzag, u);
            if (l.seq_len / (cp * u) < (cp > 1 && l.zigzag ? 2 : 1)) continue;
            out.push_back(plan_layout(l, cluster, threads));
          }
      }
    }
  std::stable_sort(out.begin(), out.end(), [](const PlannedLayout& a, const PlannedLayout& b) {
    if (a.fits() != b.fits()) return a.fits();
    return a.time.step_s < b.time.step_s;
  });
  return out;
}

}  // namespace rt
