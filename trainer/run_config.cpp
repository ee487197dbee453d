// The run's config from the command line: a YAML file, or the config saved in the checkpoint resumed from; --set on top.
#include "trainer/run_config.h"

#include <filesystem>

#include "checkpoints/checkpoint.h"
#include "core/check.h"
#include "trainer/train_checkpoint.h"

namespace rt {

Config run_config(const std::string& config_path, const std::vector<std::string>& overrides,
                  std::optional<std::string>& resume, ConfigSources* sources) {
  auto with_overrides = [&](Config config) {
    for (const std::string& assignment : overrides) config_set(config, assignment, sources);
    return config;
  };
  if (!config_path.empty()) return with_overrides(config_load(config_path, sources));
  const Config defaults = with_overrides(Config{});
  if (!resume) return defaults;

  const std::string request = resume->empty() ? checkpoint_root(defaults) : *resume;
  const std::vector<std::string> candidates =
      checkpoint_is_one(request) ? std::vector<std::string>{request} : checkpoint_candidates(request);
  for (const std::string& dir : candidates) {
    CheckpointInfo info;
    try {
      info = checkpoint_info_read(dir);
    } catch (const UserError&) {
      continue;  // resuming refuses or skips this checkpoint too, and says why
    }
    if (sources) sources->clear();
    const std::string origin = (std::filesystem::path(dir) / "manifest.pb").string() + " (its saved config)";
    *resume = request;
    return with_overrides(config_parse(info.config_yaml, origin, sources));
  }
  return defaults;
}

}  // namespace rt
