// The next token from a row of logits: greedy, or a draw at a temperature restricted to the top k and the top p.
#pragma once
#include <cstdint>
#include <random>

namespace rt {

struct SamplingOptions {
  double temperature = 1.0;  // 0: greedy (argmax)
  int64_t top_k = 0;         // > 0: only the k most likely tokens
  double top_p = 1.0;        // < 1: only the smallest set of most likely tokens whose probability reaches top_p
};

// logits: (V). Greedy returns the lowest id among equal maxima. A draw uses softmax(logits / temperature) over the
// tokens top_k and top_p keep (renormalised), with one uniform number from rng; the same rng state gives the same
// token.
int32_t sample_next(const float* logits, int64_t V, const SamplingOptions& options, std::mt19937_64& rng);

}  // namespace rt
