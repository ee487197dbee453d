// Where tests find the programs and files they use: the build tree's paths, compiled in, unless the environment names
// others (a bundle's run-tests.sh, launch/bundle.sh, runs the same test programs from wherever it was unpacked).
//   RINGTRAIN_TEST_PROGRAM_PATH  directories (':'-separated) searched by name for programs such as ringtrain
//   RINGTRAIN_TEST_MPIEXEC       the mpirun to launch ranks with
//   RINGTRAIN_TEST_SOURCE_DIR    the directory holding configs/ and tests/ (the repository, or the bundle's share/)
//   RINGTRAIN_TEST_PYTHON3       the python3 the checkpoint tests read files back with
#pragma once
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>

namespace rt_test {

// The environment's value of `name`, or `built` when it is unset or empty.
inline std::string from_env(const char* name, const std::string& built) {
  const char* value = std::getenv(name);
  return value && *value ? std::string(value) : built;
}

// The program the build wrote at `built`, or the one of that name in RINGTRAIN_TEST_PROGRAM_PATH.
inline std::string program(const std::string& built) {
  std::istringstream dirs(from_env("RINGTRAIN_TEST_PROGRAM_PATH", ""));
  const std::string name = std::filesystem::path(built).filename().string();
  for (std::string dir; std::getline(dirs, dir, ':');)
    if (!dir.empty() && access((dir + "/" + name).c_str(), X_OK) == 0) return dir + "/" + name;
  return built;
}

// True when `path` is a program this process may run.
inline bool runnable(const std::string& path) { return access(path.c_str(), X_OK) == 0; }

#ifdef MPIEXEC
inline std::string mpiexec() { return from_env("RINGTRAIN_TEST_MPIEXEC", MPIEXEC); }
#endif
#ifdef RINGTRAIN_SOURCE_DIR
inline std::string source_dir() { return from_env("RINGTRAIN_TEST_SOURCE_DIR", RINGTRAIN_SOURCE_DIR); }
#endif
#ifdef PYTHON3
inline std::string python3() { return from_env("RINGTRAIN_TEST_PYTHON3", PYTHON3); }
#endif

}  // namespace rt_test
