// child_command_run: popen with the MPI singleton's environment stripped (and a bundle's set again).
#include "trainer/child_command.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "core/check.h"

extern char** environ;

namespace rt {

std::string shell_quote(const std::string& text) {
  std::string q = "'";
  for (char c : text) {
    if (c == '\'')
      q.append("'\\''");
    else
      q.push_back(c);
  }
  q.push_back('\'');
  return q;
}

ChildResult child_command_run(const std::string& command) {
  std::string line = "env";
  for (char** e = environ; *e; ++e) {
    const std::string var(*e);
    const std::string key = var.substr(0, var.find('='));
    for (const char* prefix : {"OMPI_", "PMIX_", "OPAL_", "ORTE_", "PRTE_"})
      if (key.rfind(prefix, 0) == 0) line.append(" -u ").append(key);
  }
  // Run from a bundle (launch/bundle.sh), Open MPI's install paths are among the variables stripped: the bundle's
  // env.sh sets them again.
  const char* bundle = std::getenv("RINGTRAIN_BUNDLE");
  std::string script = command;
  if (bundle && *bundle && access((std::string(bundle) + "/env.sh").c_str(), R_OK) == 0)
    script = ". " + shell_quote(std::string(bundle) + "/env.sh") + " && " + command;
  line.append(" sh -c ").append(shell_quote(script)).append(" 2>&1");
  FILE* pipe = popen(line.c_str(), "r");
  RT_USER_CHECK(pipe != nullptr, "cannot start /bin/sh to run: " + command);
  ChildResult r;
  char buf[4096];
  for (size_t got; (got = fread(buf, 1, sizeof buf, pipe)) > 0;) r.output.append(buf, got);
  r.status = pclose(pipe);
  return r;
}

std::string child_self_path() {
  char exe[4096] = {};
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  RT_CHECK(n > 0, "the path of this program");
  return exe;
}

}  // namespace rt
