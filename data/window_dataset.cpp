// Non-overlapping windows over a token stream, visited in a per-epoch pseudo-random order (text, shards).
#include "core/check.h"
#include "data/dataset_internal.h"
#include "data/rng.h"

namespace rt::data_detail {

WindowDataset::WindowDataset(std::vector<uint16_t> stream, int64_t seq_len, uint64_t seed,
                             std::string description)
    : stream_(std::move(stream)),
      seq_len_(seq_len),
      windows_(seq_len > 0 ? (static_cast<int64_t>(stream_.size()) - 1) / seq_len : 0),
      seed_(seed) {
  RT_CHECK(seq_len_ >= 1 && windows_ >= 1, "window dataset needs at least seq_len + 1 tokens");
  description_ = description + ", " + std::to_string(windows_) + " windows of " + std::to_string(seq_len_) +
                 "+1 tokens per epoch";
}

Sequence WindowDataset::get(int64_t index) const {
  RT_CHECK(index >= 0, "sequence index must be >= 0, got " + std::to_string(index));
  const uint64_t epoch = static_cast<uint64_t>(index / windows_);
  const uint64_t slot = static_cast<uint64_t>(index % windows_);
  const uint64_t key = seed_combine(seed_combine(seed_, 0x77696e646f77ULL /* "window" */), epoch);
  const uint64_t window = permute_index(slot, static_cast<uint64_t>(windows_), key);
  const size_t start = static_cast<size_t>(window) * static_cast<size_t>(seq_len_);
  const size_t s = static_cast<size_t>(seq_len_);

  Sequence seq;
  seq.tokens.resize(s);      // (S) stream[start, start+S)
  seq.labels.resize(s);      // (S) stream[start+1, start+S+1)
  seq.long_range.assign(s, 0);
  for (size_t t = 0; t < s; ++t) {
    seq.tokens[t] = stream_[start + t];
    seq.labels[t] = stream_[start + t + 1];
  }
  return seq;
}

}  // namespace rt::data_detail
