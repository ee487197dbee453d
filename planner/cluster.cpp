// Reads and writes cluster files (configs/clusters/*.yaml): the machines the planner plans for, every number sourced.
#include "planner/cluster.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <vector>

#include "core/check.h"

namespace rt {

namespace {

using Keys = std::vector<std::string>;
using Entries = std::map<std::string, YAML::Node>;

// clang-format off
const Keys kTopKeys = {
    "name", "kind", "nodes", "devices_per_node",
    "device_memory_gib", "node_memory_gib",  // one of the two, by kind
    "gemm_tflops_fp32", "gemm_tflops_bf16", "attention_tflops_fp32", "attention_tflops_bf16",
    "thread_efficiency", "memory_bandwidth_gbs", "runtime_overhead_mib", "intra_node", "inter_node"};
// clang-format on
const Keys kLinkKeys = {"bandwidth_gbs", "latency_us"};
const Keys kMeasuredKeys = {"value", "source"};
const char kMeasuredForm[] = "{value: N, source: \"measured: ...\" or \"spec: ...\"}";
const char kLinkForm[] = "{bandwidth_gbs: {value: N, source: ...}, latency_us: {value: N, source: ...}}";

// What a number of the file may be: latencies may be 0, rates, sizes and bandwidths must be above it.
struct Limit {
  bool zero_allowed;
  const char* unit;
};

std::string joined(const Keys& keys) {
  std::string out;
  for (const std::string& k : keys) out += (out.empty() ? "" : ", ") + k;
  return out;
}

const char* kind_of(const YAML::Node& node) {
  if (node.IsMap()) return "a map";
  if (node.IsSequence()) return "a list";
  if (node.IsNull()) return "empty";
  return "a single value";
}

// Throws the one-sentence errors of one file: "ORIGIN:LINE: what", the line where yaml-cpp marked the node.
class Reader {
 public:
  explicit Reader(const std::string& origin) : origin_(origin) {}

  [[noreturn]] void fail(const YAML::Node* at, const std::string& what) const {
    std::ostringstream s;
    s << origin_;
    if (at != nullptr && at->IsDefined() && !at->Mark().is_null()) s << ":" << at->Mark().line + 1;
    s << ": " << what;
    throw UserError(s.str());
  }

  // The entries of map `node` (field `name`; "" for the top level), each key once and one of `valid`.
  Entries entries(const YAML::Node& node, const std::string& name, const Keys& valid) const {
    Entries out;
    for (const auto& kv : node) {
      const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "";
      const std::string field = name.empty() ? key : name + "." + key;
      if (!kv.first.IsScalar())
        fail(&kv.first, (name.empty() ? "a key" : name + " has a key that") + std::string(" is ") + kind_of(kv.first) +
                            ", not a name; valid keys: " + joined(valid));
      if (std::find(valid.begin(), valid.end(), key) == valid.end())
        fail(&kv.first,
             field + " is not a valid key" + (name.empty() ? "" : " of " + name) + "; valid keys: " + joined(valid));
      if (!out.emplace(key, kv.second).second) fail(&kv.first, field + " is given twice; give each key once");
    }
    return out;
  }

  // A string field (name, kind, source): one scalar.
  std::string text(const YAML::Node& node, const std::string& field) const {
    if (!node.IsScalar()) fail(&node, field + " is " + kind_of(node) + "; it must be a string");
    return node.Scalar();
  }

  double number(const YAML::Node& node, const std::string& field, Limit limit) const {
    if (!node.IsScalar()) fail(&node, field + " is " + kind_of(node) + "; it must be a number");
    const std::string& s = node.Scalar();
    if (is_quoted(node))
      fail(&node, field + " \"" + s + "\" is a quoted string; it must be a number, written without quotes");
    double v = 0;
    const std::errc ec = parse(s, v);
    if (ec != std::errc() && ec != std::errc::result_out_of_range)
      fail(&node, field + " " + s + " is not a number; it must be a number such as 80 or 0.25");
    if (ec != std::errc() || !std::isfinite(v))
      fail(&node, field + " " + s + " is not a finite number; it must be a finite number");
    if (v < 0 || (v == 0 && !limit.zero_allowed))
      fail(&node,
           field + " " + s + " is impossible; it must be " + (limit.zero_allowed ? ">= 0 " : "> 0 ") + limit.unit);
    return v;
  }

  int64_t count(const YAML::Node& node, const std::string& field) const {
    if (!node.IsScalar()) fail(&node, field + " is " + kind_of(node) + "; it must be an integer >= 1");
    const std::string& s = node.Scalar();
    if (is_quoted(node))
      fail(&node, field + " \"" + s + "\" is a quoted string; it must be an integer >= 1, written without quotes");
    int64_t v = 0;
    const char* end = s.data() + s.size();
    const auto r = std::from_chars(s.data() + (s.size() > 1 && s[0] == '+' ? 1 : 0), end, v);
    double d = 0;
    if (r.ec != std::errc() || r.ptr != end)
      fail(&node, field + " " + s + (parse(s, d) == std::errc() ? " is not an integer" : " is not a number") +
                      "; it must be an integer >= 1");
    if (v < 1) fail(&node, field + " " + s + " is impossible; it must be an integer >= 1");
    return v;
  }

  // A {value, source} map.
  Measured measured(const Entries& in, const std::string& prefix, const std::string& key, Limit limit) const {
    const std::string field = prefix + key;
    const auto it = in.find(key);
    if (it == in.end()) fail(nullptr, field + " is missing; give it as " + kMeasuredForm);
    const YAML::Node& node = it->second;
    if (node.IsScalar())
      fail(&node, field + " is the plain value " + node.Scalar() + "; give it as {value: " + node.Scalar() +
                      ", source: \"measured: ...\" or \"spec: ...\"}");
    if (!node.IsMap()) fail(&node, field + " is " + kind_of(node) + "; give it as " + kMeasuredForm);
    const Entries e = entries(node, field, kMeasuredKeys);
    for (const std::string& k : kMeasuredKeys)
      if (!e.count(k)) fail(&node, field + "." + k + " is missing; give " + field + " as " + kMeasuredForm);
    Measured m;
    m.value = number(e.at("value"), field + ".value", limit);
    m.source = text(e.at("source"), field + ".source");
    const bool valid = m.source.rfind("measured", 0) == 0 || m.source.rfind("spec", 0) == 0;
    if (!valid)
      fail(&e.at("source"), field + ".source" +
                                (m.source.empty() ? " is empty" : " \"" + m.source + "\" is not valid") +
                                "; it must start with \"measured\" (\"measured: <how, where, when>\") or \"spec\" "
                                "(\"spec: <document>\")");
    return m;
  }

  LinkSpec link(const YAML::Node& node, const std::string& field) const {
    if (!node.IsMap()) fail(&node, field + " is " + kind_of(node) + "; give it as " + kLinkForm);
    const Entries e = entries(node, field, kLinkKeys);
    LinkSpec l;
    l.bandwidth_gbs = measured(e, field + ".", "bandwidth_gbs", {false, "GB/s"});
    l.latency_us = measured(e, field + ".", "latency_us", {true, "microseconds"});
    return l;
  }

 private:
  static bool is_quoted(const YAML::Node& node) { return node.Tag() == "!" || node.Tag() == "tag:yaml.org,2002:str"; }
  // std::errc() for a whole decimal number (a leading '+' allowed), result_out_of_range beyond a double's range.
  static std::errc parse(const std::string& s, double& v) {
    const char* begin = s.data() + (s.size() > 1 && s[0] == '+' ? 1 : 0);
    const char* end = s.data() + s.size();
    const auto r = std::from_chars(begin, end, v);
    return r.ptr == end && begin != end ? r.ec : std::errc::invalid_argument;
  }

  const std::string& origin_;
};

std::string number_text(double v) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);  // shortest text that reads back as v
  return std::string(buf, r.ptr);
}

// A YAML double-quoted string: backslash, quote and control characters escaped; UTF-8 passes through.
std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "\\x%02x", u);
      out += hex;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string measured_yaml(const Measured& m) {
  return "{value: " + number_text(m.value) + ", source: " + quoted(m.source) + "}";
}

}  // namespace

ClusterSpec cluster_parse(const std::string& text, const std::string& origin) {
  const Reader r(origin);
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    std::ostringstream s;
    s << origin;
    if (!e.mark.is_null()) s << ":" << e.mark.line + 1;
    s << ": not valid YAML (" << e.msg;
    if (!e.mark.is_null()) s << " at column " << e.mark.column + 1;
    s << "); a cluster file is a YAML map such as configs/clusters/local.yaml";
    throw UserError(s.str());
  }
  if (!root.IsMap())
    r.fail(root.IsNull() ? nullptr : &root, std::string("the cluster file is ") + kind_of(root) +
                                                "; it must be a YAML map with the keys " + joined(kTopKeys) +
                                                " (see configs/clusters/local.yaml)");
  const Entries e = r.entries(root, "", kTopKeys);
  auto required = [&](const std::string& key, const std::string& valid) -> const YAML::Node& {
    const auto it = e.find(key);
    if (it == e.end()) r.fail(nullptr, key + " is missing; " + valid);
    return it->second;
  };

  ClusterSpec c;
  c.name = r.text(required("name", "give one line saying what machines these are"), "name");
  if (c.name.empty()) r.fail(&e.at("name"), "name is empty; give one line saying what machines these are");
  c.kind = r.text(required("kind", "it must be cpu or cuda"), "kind");
  if (c.kind != "cpu" && c.kind != "cuda")
    r.fail(&e.at("kind"), "kind " + c.kind + " is not valid; it must be cpu or cuda");
  c.nodes = r.count(required("nodes", "give the cluster's node count, an integer >= 1"), "nodes");
  c.devices_per_node =
      r.count(required("devices_per_node", "give the GPUs (cuda) or cores (cpu) of one node, an integer >= 1"),
              "devices_per_node");

  const bool cpu = c.memory_per_node();
  const std::string key = cpu ? "node_memory_gib" : "device_memory_gib";
  const std::string other = cpu ? "device_memory_gib" : "node_memory_gib";
  const std::string what = cpu ? "the node's usable memory, which its ranks share" : "each GPU's own memory";
  if (e.count(other))
    r.fail(&e.at(other), e.count(key) ? "device_memory_gib and node_memory_gib are both given; a " + c.kind +
                                            " cluster gives only " + key + " (" + what + ")"
                                      : other + " is not valid for kind " + c.kind + "; a " + c.kind +
                                            " cluster gives " + key + " (" + what + ") instead");
  c.memory_gib = r.measured(e, "", key, {false, "GiB"});
  c.gemm_tflops_fp32 = r.measured(e, "", "gemm_tflops_fp32", {false, "TFLOP/s"});
  c.gemm_tflops_bf16 = r.measured(e, "", "gemm_tflops_bf16", {false, "TFLOP/s"});
  c.attention_tflops_fp32 = r.measured(e, "", "attention_tflops_fp32", {false, "TFLOP/s"});
  c.attention_tflops_bf16 = r.measured(e, "", "attention_tflops_bf16", {false, "TFLOP/s"});
  c.thread_efficiency = r.measured(e, "", "thread_efficiency", {false, "(a fraction of the 1-thread rate)"});
  c.memory_bandwidth_gbs = r.measured(e, "", "memory_bandwidth_gbs", {false, "GB/s"});
  c.runtime_overhead_mib = r.measured(e, "", "runtime_overhead_mib", {false, "MiB"});
  c.intra_node = r.link(required("intra_node", std::string("give it as ") + kLinkForm), "intra_node");
  c.has_inter_node = e.count("inter_node") > 0;
  if (c.has_inter_node) {
    c.inter_node = r.link(e.at("inter_node"), "inter_node");
  } else if (c.nodes > 1) {
    r.fail(nullptr, "inter_node is missing but nodes is " + std::to_string(c.nodes) +
                        "; a cluster of several nodes must give the link between them as inter_node: " + kLinkForm);
  }
  return c;
}

ClusterSpec cluster_load(const std::string& path) {
  std::error_code error;
  const bool regular = std::filesystem::is_regular_file(path, error);
  std::ifstream file(path, std::ios::binary);
  std::ostringstream text;
  if (regular && file) text << file.rdbuf();
  if (!regular || !file || file.bad())
    throw UserError("cluster file " + path + " cannot be read; give a YAML file such as configs/clusters/local.yaml");
  return cluster_parse(text.str(), path);
}

std::string cluster_to_yaml(const ClusterSpec& spec) {
  std::ostringstream s;
  s << "name: " << quoted(spec.name) << "\n";
  s << "kind: " << (spec.kind == "cpu" || spec.kind == "cuda" ? spec.kind : quoted(spec.kind)) << "\n";
  s << "nodes: " << spec.nodes << "\n";
  s << "devices_per_node: " << spec.devices_per_node << "\n";
  s << (spec.memory_per_node() ? "node_memory_gib: " : "device_memory_gib: ") << measured_yaml(spec.memory_gib) << "\n";
  s << "gemm_tflops_fp32: " << measured_yaml(spec.gemm_tflops_fp32) << "\n";
  s << "gemm_tflops_bf16: " << measured_yaml(spec.gemm_tflops_bf16) << "\n";
  s << "attention_tflops_fp32: " << measured_yaml(spec.attention_tflops_fp32) << "\n";
  s << "attention_tflops_bf16: " << measured_yaml(spec.attention_tflops_bf16) << "\n";
  s << "thread_efficiency: " << measured_yaml(spec.thread_efficiency) << "\n";
  s << "memory_bandwidth_gbs: " << measured_yaml(spec.memory_bandwidth_gbs) << "\n";
  s << "runtime_overhead_mib: " << measured_yaml(spec.runtime_overhead_mib) << "\n";
  auto link = [&](const char* key, const LinkSpec& l) {
    s << key << ":\n  bandwidth_gbs: " << measured_yaml(l.bandwidth_gbs)
      << "\n  latency_us: " << measured_yaml(l.latency_us) << "\n";
  };
  link("intra_node", spec.intra_node);
  if (spec.has_inter_node) link("inter_node", spec.inter_node);
  return s.str();
}

}  // namespace rt
