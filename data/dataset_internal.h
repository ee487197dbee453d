// Internal to data/: the per-task constructors dataset_make dispatches to, and the shared window dataset.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace rt::data_detail {

// Each validates its arguments and throws rt::UserError with one clear sentence.
std::unique_ptr<Dataset> text_dataset_make(const DatasetSpec& spec);
std::unique_ptr<Dataset> shard_dataset_make(const DatasetSpec& spec);
std::unique_ptr<Dataset> copy_dataset_make(int64_t seq_len, int64_t vocab_size, uint64_t seed);
// depth >= 0: the recall probe with its pair at that depth (synthetic_tasks.cpp); < 0: the training task.
std::unique_ptr<Dataset> recall_dataset_make(int64_t seq_len, int64_t vocab_size, uint64_t seed, double depth = -1);
// The passkey task; depth >= 0: its number at that depth, < 0: at a random depth per sequence (passkey_task.cpp).
std::unique_ptr<Dataset> passkey_dataset_make(int64_t seq_len, int64_t vocab_size, uint64_t seed, double depth = -1);
int64_t passkey_min_seq_len();

// A token stream cut into windows for next-token training (tasks text and shards).
// Window w covers stream[w*S, w*S + S + 1): tokens = its first S, labels = its last S. The input spans of the
// W = (N - 1) / S windows are disjoint and tile the stream (a tail of < S tokens is never an input); each
// window also reads the first token of the next as its last label, as llm.c does, so every transition
// inside the tiled part is trained exactly once per epoch. Global index i is window
// permute_index(i mod W, W, key(seed, epoch = i / W)): a fresh pseudo-random order every epoch.
// Documents: doc_begins lists the stream offsets where documents start (sorted, from 0). A window's doc_start gives
// each token's document start within the window (a document cut by the window's start begins at 0 there). A label
// that is the first token of the next document is not trained on (-1) unless it is the eot token (predicting the
// end of a text is learnable; predicting the next file's first byte is not).
class WindowDataset final : public Dataset {
 public:
  // stream: (N) tokens, N >= seq_len + 1 (checked by the caller with a user-facing message). doc_begins: empty or
  // {0} for one document. eot: the token that begins documents, or -1.
  WindowDataset(std::vector<uint16_t> stream, std::vector<int64_t> doc_begins, int64_t eot, int64_t seq_len,
                uint64_t seed, std::string description);
  Sequence get(int64_t index) const override;
  std::string describe() const override { return description_; }
  bool has_long_range() const override { return false; }
  bool has_documents() const override { return doc_begins_.size() > 1; }
  int64_t windows_per_epoch() const { return windows_; }

 private:
  std::vector<uint16_t> stream_;     // (N)
  std::vector<int64_t> doc_begins_;  // document starts in the stream, sorted; empty or {0}: one document
  int64_t eot_;
  int64_t seq_len_;
  int64_t windows_;
  uint64_t seed_;
  std::string description_;
};

// Stream offsets where documents start: 0, each token equal to eot (if eot >= 0), and `more` (sorted, merged).
std::vector<int64_t> document_begins(const std::vector<uint16_t>& stream, int64_t eot, std::vector<int64_t> more);

}  // namespace rt::data_detail
