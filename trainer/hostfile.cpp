// Reading Open MPI hostfiles with a reason for every line that is not one.
#include "trainer/hostfile.h"

#include <cctype>
#include <charconv>
#include <fstream>
#include <sstream>

#include "core/check.h"

namespace rt {
namespace {

constexpr int64_t kMaxSlots = 1 << 20;

bool host_name_valid(const std::string& host) {
  if (host.empty() || host.size() > 253) return false;
  for (char c : host)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_' || c == ':' || c == '[' ||
          c == ']'))
      return false;
  return true;
}

// "N" of "key=N": a positive integer up to kMaxSlots, else 0.
int64_t count_of(const std::string& text) {
  int64_t n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end != text.data() + text.size() || n < 1 || n > kMaxSlots) return 0;
  return n;
}

}  // namespace

std::vector<HostfileEntry> hostfile_parse(const std::string& text, const std::string& origin) {
  std::vector<HostfileEntry> hosts;
  std::istringstream lines(text);
  int number = 0;
  for (std::string line; std::getline(lines, line);) {
    ++number;
    const std::string where = origin + ":" + std::to_string(number);
    std::istringstream words(line.substr(0, line.find('#')));
    std::string host;
    if (!(words >> host)) continue;
    RT_USER_CHECK(host_name_valid(host), where + ": '" + host +
                                             "' is not a host name; give a name or address (letters, digits, '.', "
                                             "'-', '_', ':') then optional slots=N max_slots=N");
    HostfileEntry entry{host};
    for (std::string word; words >> word;) {
      const size_t eq = word.find('=');
      const std::string key = word.substr(0, eq), value = eq == std::string::npos ? "" : word.substr(eq + 1);
      int64_t* field = key == "slots" || key == "count"           ? &entry.slots
                       : key == "max_slots" || key == "max-slots" ? &entry.max_slots
                                                                  : nullptr;
      RT_USER_CHECK(field != nullptr && eq != std::string::npos,
                    where + ": '" + word + "' is not a host option; valid: slots=N, max_slots=N");
      *field = count_of(value);
      RT_USER_CHECK(*field > 0, where + ": " + key + " is '" + value + "'; give a whole number from 1 to " +
                                    std::to_string(kMaxSlots));
    }
    RT_USER_CHECK(entry.max_slots == 0 || entry.max_slots >= entry.slots,
                  where + ": max_slots " + std::to_string(entry.max_slots) + " is below slots " +
                      std::to_string(entry.slots) + "; give max_slots >= slots");
    bool merged = false;
    for (HostfileEntry& h : hosts)
      if (h.host == entry.host) {
        h.slots += entry.slots;
        h.max_slots = h.max_slots && entry.max_slots ? h.max_slots + entry.max_slots : 0;
        merged = true;
      }
    if (!merged) hosts.push_back(entry);
  }
  RT_USER_CHECK(!hosts.empty(), origin + " names no host; give one 'host slots=N' line per node");
  return hosts;
}

std::vector<HostfileEntry> hostfile_load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  RT_USER_CHECK(in, "hostfile " + path + " cannot be read; give a file of 'host slots=N' lines");
  std::ostringstream text;
  text << in.rdbuf();
  return hostfile_parse(text.str(), "hostfile " + path);
}

}  // namespace rt
