// Random token batches for the model tests: built on the host, uploaded to any backend.
#pragma once
#include <cstdint>
#include <random>
#include <vector>

#include "core/backend.h"
#include "trainer/model.h"

namespace rt {

struct HostBatch {
  int64_t batch, seq;
  std::vector<int32_t> tokens, labels, pos;  // (batch * seq) each
};

// Uniform tokens and labels, every fifth label (t % 5 == 3) ignored, positions 0..seq-1.
inline HostBatch random_batch(std::mt19937& rng, int64_t batch, int64_t seq, int64_t vocab) {
  HostBatch h{batch, seq, {}, {}, {}};
  std::uniform_int_distribution<int32_t> tok(0, static_cast<int32_t>(vocab - 1));
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t < seq; ++t) {
      h.tokens.push_back(tok(rng));
      h.labels.push_back(t % 5 == 3 ? -1 : tok(rng));
      h.pos.push_back(static_cast<int32_t>(t));
    }
  return h;
}

inline Batch to_device(Backend& be, const HostBatch& h) {
  const int64_t n = h.batch * h.seq;
  Batch b{h.batch, h.seq, be.alloc({n}, DType::i32), be.alloc({n}, DType::i32), be.alloc({n}, DType::i32),
          Tensor{}};
  be.upload(h.tokens.data(), b.tokens);
  be.upload(h.labels.data(), b.labels);
  be.upload(h.pos.data(), b.pos);
  return b;
}

}  // namespace rt
