// Fuzz target: a YAML config file (trainer/config.h) read over the defaults, then `--set` overrides, then validation,
// the length stages and data paths it names. Input: the file's text, a NUL byte, then one override per line.
// Accepted configs must survive what a checkpoint does with them: written as the resolved YAML and read back equal.
#include <sstream>

#include "tests/fuzz/fuzz_targets.h"
#include "trainer/config.h"
#include "trainer/stages.h"

namespace rt::fuzz {

bool config_target(const uint8_t* data, size_t size) {
  const std::pair<std::string_view, std::string_view> parts = split_at(as_text(data, size), '\0');
  const std::string_view yaml = parts.first, overrides = parts.second;
  const std::string path = scratch_dir() + "/config.yaml";
  write_file(path, yaml);
  return result_or_user_error([&] {
    ConfigSources sources;
    Config config = config_load(path, &sources);
    std::istringstream lines{std::string(overrides)};
    for (std::string line; std::getline(lines, line);) config_set(config, line, &sources);
    config_validate(config, sources);
    stages_parse(config);
    data_paths(config.data);
    for (const std::string& key : config_keys()) config_get(config, key);
    const std::string resolved = config_to_yaml(config);
    const Config again = config_parse(resolved, "the resolved config");
    if (!(again == config))
      wrong_result("a validated config that reads back different from its resolved YAML:\n" + resolved);
  });
}

}  // namespace rt::fuzz
