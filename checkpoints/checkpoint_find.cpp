// Finding checkpoints under a root directory: the step directories, the `latest` pointer, resume candidates.
#include <algorithm>
#include <filesystem>
#include <fstream>

#include "checkpoints/checkpoint.h"
#include "checkpoints/manifest.h"

namespace rt {

namespace fs = std::filesystem;

std::vector<std::pair<int64_t, std::string>> checkpoint_list(const std::string& root) {
  std::vector<std::pair<int64_t, std::string>> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    const std::string name = entry.path().filename().string();
    const std::string digits = name.rfind("step_", 0) == 0 ? name.substr(5) : "";
    if (digits.empty() || digits.size() > 18 || !std::all_of(digits.begin(), digits.end(), ::isdigit)) continue;
    if (!entry.is_directory(ec)) continue;
    out.emplace_back(std::stoll(digits), entry.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool checkpoint_is_one(const std::string& path) {
  std::error_code ec;
  return fs::is_regular_file(fs::path(path) / kManifestFile, ec);
}

std::vector<std::string> checkpoint_candidates(const std::string& root) {
  const auto all = checkpoint_list(root);
  std::string latest;
  std::ifstream(fs::path(root) / "latest") >> latest;
  auto named = std::find_if(all.begin(), all.end(),
                            [&](const auto& c) { return !latest.empty() && fs::path(c.second).filename() == latest; });
  std::vector<std::string> out;
  if (named != all.end()) out.push_back(named->second);
  for (auto it = named == all.end() ? all.rbegin() : std::make_reverse_iterator(named); it != all.rend(); ++it)
    out.push_back(it->second);
  return out;
}

}  // namespace rt
