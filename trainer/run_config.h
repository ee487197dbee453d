// The config `ringtrain train` runs with: --config, or with --resume alone the checkpoint's own, then every --set.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "trainer/config.h"

namespace rt {

// The file config_path names over the defaults, then each "section.key=value" of `overrides`. With no config_path
// and a `resume` request (a checkpoint, a directory of them, or "" for the latest under checkpoint.dir of the
// defaults and overrides), the base is instead the resolved config saved in that checkpoint's manifest: of the
// checkpoint itself, or of the newest in the directory whose manifest verifies (the one resuming starts from unless
// its other files fail); a "" request then becomes that directory, so that resuming looks where the config came
// from even when the saved config names another checkpoint.dir. Without such a checkpoint the base is the
// defaults, and resuming says why. Not validated; throws rt::UserError as config_load and config_set do.
Config run_config(const std::string& config_path, const std::vector<std::string>& overrides,
                  std::optional<std::string>& resume, ConfigSources* sources);

}  // namespace rt
