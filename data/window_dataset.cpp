// Non-overlapping windows over a token stream of documents, visited in a per-epoch pseudo-random order (text, shards).
#include <algorithm>

#include "core/check.h"
#include "data/dataset_internal.h"
#include "data/rng.h"

namespace rt::data_detail {

std::vector<int64_t> document_begins(const std::vector<uint16_t>& stream, int64_t eot, std::vector<int64_t> more) {
  std::vector<int64_t> begins = std::move(more);
  begins.push_back(0);
  if (eot >= 0)
    for (size_t i = 0; i < stream.size(); ++i)
      if (stream[i] == eot) begins.push_back(static_cast<int64_t>(i));
  std::sort(begins.begin(), begins.end());
  begins.erase(std::unique(begins.begin(), begins.end()), begins.end());
  return begins;
}

WindowDataset::WindowDataset(std::vector<uint16_t> stream, std::vector<int64_t> doc_begins, int64_t eot,
                             int64_t seq_len, uint64_t seed, std::string description)
    : stream_(std::move(stream)),
      doc_begins_(std::move(doc_begins)),
      eot_(eot),
      seq_len_(seq_len),
      windows_(seq_len > 0 ? (static_cast<int64_t>(stream_.size()) - 1) / seq_len : 0),
      seed_(seed) {
  RT_CHECK(seq_len_ >= 1 && windows_ >= 1, "window dataset needs at least seq_len + 1 tokens");
  description_ = description + ", " + std::to_string(windows_) + " windows of " + std::to_string(seq_len_) +
                 "+1 tokens per epoch";
  if (has_documents()) description_ += ", " + std::to_string(doc_begins_.size()) + " documents";
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
  if (!has_documents()) return seq;
  // doc_start: the last document begin at or before each token, relative to the window (0 if before it).
  seq.doc_start.resize(s);
  auto next = std::upper_bound(doc_begins_.begin(), doc_begins_.end(), static_cast<int64_t>(start));
  int64_t current = 0;
  for (size_t t = 0; t < s; ++t) {
    const int64_t g = static_cast<int64_t>(start + t);
    for (; next != doc_begins_.end() && *next <= g; ++next) current = *next - static_cast<int64_t>(start);
    seq.doc_start[t] = static_cast<int32_t>(current);
    const bool label_begins_document = next != doc_begins_.end() && *next == g + 1;
    if (label_begins_document && seq.labels[t] != eot_) seq.labels[t] = -1;
  }
  return seq;
}

}  // namespace rt::data_detail
