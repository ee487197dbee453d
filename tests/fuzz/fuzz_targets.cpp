// The fuzz targets' registry and the helpers they share.
#include "tests/fuzz/fuzz_targets.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace rt::fuzz {

const std::vector<Target>& targets() {
  static const std::vector<Target> all = {
      {"safetensors", safetensors_target},
      {"manifest", manifest_target},
      {"checkpoint", checkpoint_target},
      {"config", config_target},
      {"shard", shard_target},
      {"cluster", cluster_target},
      {"hostfile", hostfile_target},
      {"tensorboard", tensorboard_target},
  };
  return all;
}

const std::string& scratch_dir() {
  static const std::string dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/ringtrain-fuzz-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      std::perror("ringtrain fuzz: mkdtemp");
      std::abort();
    }
    // Removed when the process exits normally (libFuzzer's -runs / -max_total_time end with exit()).
    static const std::string removed_at_exit = pattern;
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(removed_at_exit, ec);
    });
    return pattern;
  }();
  return dir;
}

void write_file(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::fprintf(stderr, "ringtrain fuzz: cannot write %s\n", path.c_str());
    std::abort();
  }
}

std::pair<std::string_view, std::string_view> split_at(std::string_view bytes, char separator) {
  const size_t at = bytes.find(separator);
  if (at == std::string_view::npos) return {bytes, {}};
  return {bytes.substr(0, at), bytes.substr(at + 1)};
}

void wrong_result(const std::string& what) {
  std::fprintf(stderr, "ringtrain fuzz: wrong result: %s\n", what.c_str());
  std::abort();
}

void check_user_error_message(const char* what) {
  if (what == nullptr || what[0] == '\0') wrong_result("a rt::UserError without a message");
}

}  // namespace rt::fuzz
