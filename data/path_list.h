// data.path entries expanded to files: a file, a directory (every regular file below it), or a glob pattern.
#pragma once
#include <string>
#include <vector>

namespace rt::data_detail {

// The files named by `entries`, in order: a directory gives every regular file below it (recursively, sorted by
// path), a pattern with * ? [ its sorted matches, anything else itself (checked when it is read). Throws
// rt::UserError naming the entry when a pattern matches nothing or a directory holds no file. `what` names the
// expected files in messages ("a text file", "an llm.c token shard (.bin)").
std::vector<std::string> path_list_expand(const std::vector<std::string>& entries, const std::string& what);

}  // namespace rt::data_detail
