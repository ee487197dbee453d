// Greedy and temperature / top-k / top-p sampling over one row of logits.
#include "trainer/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "core/check.h"

namespace rt {

int32_t sample_next(const float* logits, int64_t V, const SamplingOptions& o, std::mt19937_64& rng) {
  RT_CHECK(V >= 1, "sampling needs at least one logit");
  if (o.temperature <= 0 || o.top_k == 1)
    return static_cast<int32_t>(std::max_element(logits, logits + V) - logits);  // the first maximum
  // Tokens by decreasing logit (ties: lower id first), cut to top_k.
  std::vector<int32_t> order(static_cast<size_t>(V));
  std::iota(order.begin(), order.end(), 0);
  const int64_t keep = o.top_k > 0 ? std::min(o.top_k, V) : V;
  auto by_logit = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  std::partial_sort(order.begin(), order.begin() + keep, order.end(), by_logit);
  order.resize(static_cast<size_t>(keep));
  // Probabilities at the temperature (in double), then the nucleus: the shortest prefix reaching top_p.
  std::vector<double> prob(order.size());
  const double top = logits[order[0]];
  double sum = 0;
  for (size_t i = 0; i < order.size(); ++i) sum += prob[i] = std::exp((logits[order[i]] - top) / o.temperature);
  size_t n = order.size();
  if (o.top_p < 1) {
    double mass = 0;
    for (n = 0; n < order.size();) {
      mass += prob[n++] / sum;
      if (mass >= o.top_p) break;
    }
  }
  const double total = std::accumulate(prob.begin(), prob.begin() + static_cast<std::ptrdiff_t>(n), 0.0);
  const double u = std::uniform_real_distribution<double>(0.0, total)(rng);
  double c = 0;
  for (size_t i = 0; i < n; ++i)
    if ((c += prob[i]) > u) return order[i];
  return order[n - 1];
}

}  // namespace rt
