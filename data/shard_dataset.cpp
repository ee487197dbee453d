// Task `shards`: one llm.c token shard or a glob of them, read fully, concatenated in sorted name order.
#include <glob.h>

#include <algorithm>
#include <string>
#include <vector>

#include "core/check.h"
#include "data/dataset_internal.h"
#include "data/shard.h"

namespace rt::data_detail {
namespace {

bool has_glob_chars(const std::string& path) { return path.find_first_of("*?[") != std::string::npos; }

// The shard files named by data.path: the path itself, or the sorted matches of a glob pattern.
std::vector<std::string> shard_paths(const std::string& pattern) {
  if (!has_glob_chars(pattern)) return {pattern};
  glob_t matches{};
  const int rc = glob(pattern.c_str(), 0, nullptr, &matches);
  std::vector<std::string> paths;
  if (rc == 0) {
    for (size_t i = 0; i < matches.gl_pathc; ++i) paths.emplace_back(matches.gl_pathv[i]);
  }
  globfree(&matches);
  RT_USER_CHECK(rc != GLOB_NOSPACE, "out of memory expanding data.path pattern '" + pattern + "'");
  RT_USER_CHECK(rc != GLOB_ABORTED, "cannot read a directory while expanding data.path pattern '" + pattern + "'");
  RT_USER_CHECK(!paths.empty(), "data.path pattern '" + pattern +
                                    "' matches no files; give an llm.c token shard (.bin) or a glob that matches some");
  std::sort(paths.begin(), paths.end());
  return paths;
}

}  // namespace

std::unique_ptr<Dataset> shard_dataset_make(const std::string& path, int64_t seq_len, int64_t vocab_size,
                                            uint64_t seed) {
  RT_USER_CHECK(!path.empty(), "data.path is required for data.task=shards; give an llm.c token shard (.bin) "
                               "or a glob such as 'data/train_*.bin'");
  const std::vector<std::string> paths = shard_paths(path);
  std::vector<uint16_t> stream;  // (N) all shards, concatenated
  for (const std::string& file : paths) {
    const std::vector<uint16_t> tokens = shard_read(file, vocab_size);
    stream.insert(stream.end(), tokens.begin(), tokens.end());
  }
  const int64_t count = static_cast<int64_t>(stream.size());
  const std::string what = paths.size() == 1 ? "shard '" + paths[0] + "'"
                                             : std::to_string(paths.size()) + " shards matching '" + path + "'";
  RT_USER_CHECK(count >= seq_len + 1, what + " hold" + (paths.size() == 1 ? "s " : " ") + std::to_string(count) +
                                          " tokens but train.seq_len=" + std::to_string(seq_len) +
                                          " needs at least " + std::to_string(seq_len + 1) +
                                          "; add data or use a smaller train.seq_len");
  return std::make_unique<WindowDataset>(std::move(stream), seq_len, seed,
                                         "shards '" + path + "': " + std::to_string(paths.size()) + " file(s), " +
                                             std::to_string(count) + " tokens");
}

}  // namespace rt::data_detail
