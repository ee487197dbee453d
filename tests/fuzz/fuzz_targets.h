// The fuzz targets: each feeds arbitrary bytes to one parser of the files users hand ringtrain. A parser must return a
// result (checked here where it can be) or throw rt::UserError with a one-line message; anything else (another
// exception, a failed RT_CHECK, a sanitizer report, a hang, an allocation the input's size does not justify) is a
// finding. Built as libFuzzer executables by launch/fuzz.sh and replayed over the corpora by fuzz_replay_test.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace rt::fuzz {

// Returns whether the parser accepted the input (false: it threw rt::UserError).
using TargetFn = bool (*)(const uint8_t* data, size_t size);

struct Target {
  const char* name;  // fuzz_<name> is its executable, tests/fuzz/corpus/<name>/ its seeds' directory
  TargetFn run;
};

bool safetensors_target(const uint8_t* data, size_t size);  // safetensors header and tensor index, from memory
bool manifest_target(const uint8_t* data, size_t size);     // manifest.pb with its checksum
bool checkpoint_target(const uint8_t* data, size_t size);   // a whole checkpoint directory: read, inspect, resume
bool config_target(const uint8_t* data, size_t size);       // YAML config, then --set overrides, then validation
bool shard_target(const uint8_t* data, size_t size);        // an llm.c token shard file
bool cluster_target(const uint8_t* data, size_t size);      // a planner cluster file
bool hostfile_target(const uint8_t* data, size_t size);     // an Open MPI hostfile (ringtrain calibrate --hostfile)
bool tensorboard_target(const uint8_t* data, size_t size);  // a TensorBoard event file

// Every target, in the order above.
const std::vector<Target>& targets();

// Runs `body` and returns true, or false when it throws rt::UserError, which must carry a message (it is printed
// after "ringtrain: error:"). Any other exception propagates, which libFuzzer reports as a crash.
template <class Body>
bool result_or_user_error(Body&& body);

// A directory of this process's own (created once, under $TMPDIR or /tmp) for parsers that read by path.
const std::string& scratch_dir();
// Writes bytes to `path`, replacing it.
void write_file(const std::string& path, std::string_view bytes);
// The input as text.
inline std::string_view as_text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}
// Splits the input at the first `separator` byte: (before, after); after is empty when there is none.
std::pair<std::string_view, std::string_view> split_at(std::string_view bytes, char separator);

// Reports a wrong result (a parse that accepted the input but broke a property the target checks): prints and aborts.
[[noreturn]] void wrong_result(const std::string& what);

void check_user_error_message(const char* what);

}  // namespace rt::fuzz

#include "core/check.h"

template <class Body>
bool rt::fuzz::result_or_user_error(Body&& body) {
  try {
    body();
    return true;
  } catch (const rt::UserError& e) {
    check_user_error_message(e.what());
    return false;
  }
}
