// Running a shell command from a ringtrain process (calibrate's and plan --validate's launches of mpirun): its exit
// status and output, with this process's own Open MPI variables removed so the child's mpirun starts afresh.
#pragma once
#include <string>

namespace rt {

struct ChildResult {
  int status = -1;     // 0 on success (pclose's status otherwise)
  std::string output;  // stdout and stderr together
};

// Runs `command` under /bin/sh with every OMPI_, PMIX_, OPAL_, ORTE_ and PRTE_ variable unset (an MPI singleton has
// them; an mpirun that inherits them exits at once), then, from a bundle ($RINGTRAIN_BUNDLE), its env.sh sourced.
// Throws rt::UserError when no shell can start.
ChildResult child_command_run(const std::string& command);

// `text` as one single-quoted shell word.
std::string shell_quote(const std::string& text);

// The absolute path of this program (/proc/self/exe).
std::string child_self_path();

}  // namespace rt
