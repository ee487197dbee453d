// The loader: global sequence indices per step and data-parallel rank, flattened into micro-batches.
#include "data/loader.h"

#include "core/check.h"

namespace rt {

Loader::Loader(const Dataset& dataset, int64_t seq_len, int64_t batch_size, int64_t micro_batch, int64_t dp_rank,
               int64_t dp_size, bool reset_positions)
    : dataset_(dataset),
      seq_len_(seq_len),
      batch_size_(batch_size),
      micro_batch_(micro_batch),
      dp_rank_(dp_rank),
      dp_size_(dp_size),
      micro_steps_(batch_size / (micro_batch * dp_size)),
      reset_positions_(reset_positions) {
  RT_CHECK(micro_steps_ * micro_batch * dp_size == batch_size, "batch_size not divisible by micro_batch * dp");
}

LocalBatch Loader::get(int64_t step, int64_t micro) const {
  LocalBatch out;
  out.batch = micro_batch_;
  out.seq = seq_len_;
  const int64_t first = step * batch_size_ + dp_rank_ * (batch_size_ / dp_size_) + micro * micro_batch_;
  for (int64_t b = 0; b < micro_batch_; ++b) {
    Sequence s = dataset_.get(first + b);
    RT_CHECK(static_cast<int64_t>(s.tokens.size()) == seq_len_, "dataset returned a sequence of the wrong length");
    out.tokens.insert(out.tokens.end(), s.tokens.begin(), s.tokens.end());
    out.labels.insert(out.labels.end(), s.labels.begin(), s.labels.end());
    out.long_range.insert(out.long_range.end(), s.long_range.begin(), s.long_range.end());
    RT_CHECK(s.doc_start.empty() || static_cast<int64_t>(s.doc_start.size()) == seq_len_,
             "dataset returned document starts of the wrong length");
    for (int64_t t = 0; t < seq_len_; ++t) {
      const int32_t doc = s.doc_start.empty() ? 0 : s.doc_start[static_cast<size_t>(t)];
      out.doc_start.push_back(doc);
      out.pos.push_back(static_cast<int32_t>(reset_positions_ ? t - doc : t));
    }
  }
  return out;
}

}  // namespace rt
