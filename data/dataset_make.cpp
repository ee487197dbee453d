// dataset_make: picks the dataset for data.task and checks the arguments every task shares.
#include "core/check.h"
#include "data/dataset.h"
#include "data/dataset_internal.h"

namespace rt {

std::unique_ptr<Dataset> dataset_make(const DatasetSpec& spec) {
  RT_USER_CHECK(spec.seq_len >= 1, "train.seq_len must be >= 1 (got " + std::to_string(spec.seq_len) + ")");
  RT_USER_CHECK(spec.vocab_size >= 1, "model.vocab_size must be >= 1 (got " + std::to_string(spec.vocab_size) + ")");
  const std::string& task = spec.task;
  RT_USER_CHECK(spec.eot < spec.vocab_size && spec.eot >= -1,
                "data.eot=" + std::to_string(spec.eot) + " is not a token id of model.vocab_size " +
                    std::to_string(spec.vocab_size) + "; valid: 0.." + std::to_string(spec.vocab_size - 1) +
                    ", or -1 for none");
  RT_USER_CHECK(spec.eot == -1 || (task != "copy" && task != "recall"),
                "data.eot applies to data.task text and shards, not " + task + "; remove it or set it to -1");
  if (task == "copy") return data_detail::copy_dataset_make(spec.seq_len, spec.vocab_size, spec.seed);
  if (task == "recall") return data_detail::recall_dataset_make(spec.seq_len, spec.vocab_size, spec.seed);
  if (task == "text") return data_detail::text_dataset_make(spec);
  if (task == "shards") return data_detail::shard_dataset_make(spec);
  throw UserError("unknown data.task '" + task + "'; valid tasks: copy, recall, text, shards");
}

}  // namespace rt
