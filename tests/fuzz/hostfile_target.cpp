// Fuzz target: an Open MPI hostfile (trainer/hostfile.h), as `ringtrain calibrate --hostfile` reads it. Accepted
// hostfiles give distinct, non-empty host names with counts in range.
#include <set>

#include "tests/fuzz/fuzz_targets.h"
#include "trainer/hostfile.h"

namespace rt::fuzz {

bool hostfile_target(const uint8_t* data, size_t size) {
  const std::string path = scratch_dir() + "/hostfile";
  write_file(path, as_text(data, size));
  return result_or_user_error([&] {
    const std::vector<HostfileEntry> hosts = hostfile_load(path);
    std::set<std::string> names;
    for (const HostfileEntry& h : hosts) {
      if (h.host.empty() || h.host.find_first_of(" \t\r\n#=") != std::string::npos)
        wrong_result("a host name accepted with a blank, '#' or '=': '" + h.host + "'");
      if (h.slots < 0 || h.max_slots < 0) wrong_result("a negative slot count accepted");
      if (!names.insert(h.host).second) wrong_result("host " + h.host + " listed twice");
    }
    if (hosts.empty()) wrong_result("a hostfile with no host accepted");
  });
}

}  // namespace rt::fuzz
