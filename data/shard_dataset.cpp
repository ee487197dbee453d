// Task `shards`: llm.c token shards (files, globs, directories), read fully and concatenated in order.
#include <string>
#include <vector>

#include "core/check.h"
#include "data/dataset_internal.h"
#include "data/path_list.h"
#include "data/shard.h"

namespace rt::data_detail {

std::unique_ptr<Dataset> shard_dataset_make(const DatasetSpec& spec) {
  RT_USER_CHECK(!spec.paths.empty(), "data.path is required for data.task=shards; give an llm.c token shard (.bin), "
                                     "a glob such as 'data/train_*.bin', a directory or a list");
  const std::vector<std::string> paths = path_list_expand(spec.paths, "an llm.c token shard (.bin)");
  std::vector<uint16_t> stream;  // (N) all shards, concatenated
  for (const std::string& file : paths) {
    const std::vector<uint16_t> tokens = shard_read(file, spec.vocab_size);
    stream.insert(stream.end(), tokens.begin(), tokens.end());
  }
  const int64_t count = static_cast<int64_t>(stream.size());
  const std::string named = spec.paths.size() == 1 ? spec.paths[0] : std::to_string(spec.paths.size()) + " entries";
  const std::string what = paths.size() == 1 ? "shard '" + paths[0] + "'"
                                             : std::to_string(paths.size()) + " shards matching '" + named + "'";
  RT_USER_CHECK(count >= spec.seq_len + 1, what + " hold" + (paths.size() == 1 ? "s " : " ") + std::to_string(count) +
                                               " tokens but train.seq_len=" + std::to_string(spec.seq_len) +
                                               " needs at least " + std::to_string(spec.seq_len + 1) +
                                               "; add data or use a smaller train.seq_len");
  // Documents begin at each eot token (llm.c puts <|endoftext|> before every document; one may span two shards).
  std::vector<int64_t> begins = document_begins(stream, spec.eot, {});
  return std::make_unique<WindowDataset>(std::move(stream), std::move(begins), spec.eot, spec.seq_len, spec.seed,
                                         "shards '" + named + "': " + std::to_string(paths.size()) + " file(s), " +
                                             std::to_string(count) + " tokens");
}

}  // namespace rt::data_detail
