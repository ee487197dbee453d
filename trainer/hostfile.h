// Open MPI hostfiles (`host [slots=N] [max_slots=N]` per line, `#` comments): the nodes `ringtrain calibrate
// --hostfile` measures across.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace rt {

struct HostfileEntry {
  std::string host;       // a host name or address
  int64_t slots = 0;      // slots=N; 0 when not given (Open MPI then counts the host's cores)
  int64_t max_slots = 0;  // max_slots=N (or max-slots=N); 0 when not given
};

// The hosts of a hostfile's text, in order, a host named on several lines once (Open MPI adds up their slots).
// Throws rt::UserError naming `origin`, the line and what is valid for a malformed host name, an unknown key, a
// count that is not a positive integer, max_slots below slots, or a file that names no host.
std::vector<HostfileEntry> hostfile_parse(const std::string& text, const std::string& origin);
// The same for a file; throws rt::UserError when it cannot be read.
std::vector<HostfileEntry> hostfile_load(const std::string& path);

}  // namespace rt
