// dataset_make: picks the dataset for data.task and checks the arguments every task shares; the answers-only view.
#include "core/check.h"
#include "data/dataset.h"
#include "data/dataset_internal.h"

namespace rt {
namespace {

class LongRangeLabelsOnly final : public Dataset {
 public:
  explicit LongRangeLabelsOnly(std::unique_ptr<Dataset> inner) : inner_(std::move(inner)) {}
  Sequence get(int64_t index) const override {
    Sequence seq = inner_->get(index);
    for (size_t t = 0; t < seq.labels.size(); ++t)
      if (!seq.long_range[t]) seq.labels[t] = -1;
    return seq;
  }
  std::string describe() const override { return inner_->describe() + ", trained on its long-range labels only"; }
  bool has_long_range() const override { return true; }
  bool has_documents() const override { return inner_->has_documents(); }

 private:
  std::unique_ptr<Dataset> inner_;
};

}  // namespace

std::unique_ptr<Dataset> dataset_make(const DatasetSpec& spec) {
  RT_USER_CHECK(spec.seq_len >= 1, "train.seq_len must be >= 1 (got " + std::to_string(spec.seq_len) + ")");
  RT_USER_CHECK(spec.vocab_size >= 1, "model.vocab_size must be >= 1 (got " + std::to_string(spec.vocab_size) + ")");
  const std::string& task = spec.task;
  RT_USER_CHECK(spec.eot < spec.vocab_size && spec.eot >= -1,
                "data.eot=" + std::to_string(spec.eot) + " is not a token id of model.vocab_size " +
                    std::to_string(spec.vocab_size) + "; valid: 0.." + std::to_string(spec.vocab_size - 1) +
                    ", or -1 for none");
  RT_USER_CHECK(spec.eot == -1 || task == "text" || task == "shards",
                "data.eot applies to data.task text and shards, not " + task + "; remove it or set it to -1");
  if (task == "copy") return data_detail::copy_dataset_make(spec.seq_len, spec.vocab_size, spec.seed);
  if (task == "recall") return data_detail::recall_dataset_make(spec.seq_len, spec.vocab_size, spec.seed);
  if (task == "passkey") return data_detail::passkey_dataset_make(spec.seq_len, spec.vocab_size, spec.seed);
  if (task == "text") return data_detail::text_dataset_make(spec);
  if (task == "shards") return data_detail::shard_dataset_make(spec);
  throw UserError("unknown data.task '" + task + "'; valid tasks: copy, recall, passkey, text, shards");
}

std::unique_ptr<Dataset> long_range_labels_only(std::unique_ptr<Dataset> dataset) {
  RT_USER_CHECK(dataset->has_long_range(), "data.train_on=long_range needs a task with long-range labels (copy, "
                                           "recall, passkey); this dataset has none: " + dataset->describe());
  return std::make_unique<LongRangeLabelsOnly>(std::move(dataset));
}

std::unique_ptr<Dataset> retrieval_probe_make(const std::string& task, int64_t seq_len, double depth,
                                              int64_t vocab_size, uint64_t seed) {
  RT_USER_CHECK(depth >= 0 && depth <= 1, "a retrieval depth must lie in [0, 1] (0: the context's start, 1: its "
                                          "end); got " + std::to_string(depth));
  if (task == "recall") return data_detail::recall_dataset_make(seq_len, vocab_size, seed, depth);
  if (task == "passkey") return data_detail::passkey_dataset_make(seq_len, vocab_size, seed, depth);
  throw UserError("unknown retrieval task '" + task + "'; valid: recall, passkey");
}

int64_t retrieval_probe_min_seq_len(const std::string& task) {
  return task == "passkey" ? data_detail::passkey_min_seq_len() : 16;
}

}  // namespace rt
