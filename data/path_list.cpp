// data.path entries expanded to files: directories walked in sorted order, glob patterns matched.
#include "data/path_list.h"

#include <glob.h>

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "core/check.h"

namespace rt::data_detail {
namespace {

bool has_glob_chars(const std::string& path) { return path.find_first_of("*?[") != std::string::npos; }

std::vector<std::string> glob_matches(const std::string& pattern, const std::string& what) {
  glob_t matches{};
  const int rc = glob(pattern.c_str(), 0, nullptr, &matches);
  std::vector<std::string> paths;
  if (rc == 0) {
    for (size_t i = 0; i < matches.gl_pathc; ++i) paths.emplace_back(matches.gl_pathv[i]);
  }
  globfree(&matches);
  RT_USER_CHECK(rc != GLOB_NOSPACE, "out of memory expanding data.path pattern '" + pattern + "'");
  RT_USER_CHECK(rc != GLOB_ABORTED, "cannot read a directory while expanding data.path pattern '" + pattern + "'");
  RT_USER_CHECK(!paths.empty(),
                "data.path pattern '" + pattern + "' matches no files; give " + what + " or a glob that matches some");
  std::sort(paths.begin(), paths.end());
  return paths;
}

std::vector<std::string> directory_files(const std::string& dir, const std::string& what) {
  namespace fs = std::filesystem;
  std::vector<std::string> paths;
  std::error_code error;
  for (fs::recursive_directory_iterator it(dir, error), end; !error && it != end; it.increment(error))
    if (it->is_regular_file(error)) paths.push_back(it->path().string());
  RT_USER_CHECK(!error, "cannot read directory '" + dir + "' (data.path): " + error.message());
  RT_USER_CHECK(!paths.empty(), "directory '" + dir + "' (data.path) holds no files; give " + what +
                                    ", a directory of them, or a list");
  std::sort(paths.begin(), paths.end());
  return paths;
}

}  // namespace

std::vector<std::string> path_list_expand(const std::vector<std::string>& entries, const std::string& what) {
  std::vector<std::string> files;
  for (const std::string& entry : entries) {
    std::error_code error;
    std::vector<std::string> more;
    if (has_glob_chars(entry))
      more = glob_matches(entry, what);
    else if (std::filesystem::is_directory(entry, error))
      more = directory_files(entry, what);
    else
      more = {entry};
    files.insert(files.end(), more.begin(), more.end());
  }
  return files;
}

}  // namespace rt::data_detail
