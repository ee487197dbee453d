// dataset_make: picks the dataset for data.task and checks the arguments every task shares.
#include "core/check.h"
#include "data/dataset.h"
#include "data/dataset_internal.h"

namespace rt {

std::unique_ptr<Dataset> dataset_make(const std::string& task, const std::string& path, int64_t seq_len,
                                      int64_t vocab_size, uint64_t seed) {
  RT_USER_CHECK(seq_len >= 1, "train.seq_len must be >= 1 (got " + std::to_string(seq_len) + ")");
  RT_USER_CHECK(vocab_size >= 1, "model.vocab_size must be >= 1 (got " + std::to_string(vocab_size) + ")");
  if (task == "copy") return data_detail::copy_dataset_make(seq_len, vocab_size, seed);
  if (task == "recall") return data_detail::recall_dataset_make(seq_len, vocab_size, seed);
  if (task == "text") return data_detail::text_dataset_make(path, seq_len, vocab_size, seed);
  if (task == "shards") return data_detail::shard_dataset_make(path, seq_len, vocab_size, seed);
  throw UserError("unknown data.task '" + task + "'; valid tasks: copy, recall, text, shards");
}

}  // namespace rt
