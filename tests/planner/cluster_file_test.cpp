// Cluster files: each of configs/clusters/ loads sensibly and round-trips; bad input is one rt::UserError sentence.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/check.h"
#include "planner/cluster.h"
#include "tests/test_paths.h"

namespace rt {
namespace {

namespace fs = std::filesystem;

std::vector<fs::path> cluster_files() {
  std::vector<fs::path> out;
  for (const auto& entry : fs::directory_iterator(fs::path(rt_test::source_dir()) / "configs" / "clusters"))
    if (entry.path().extension() == ".yaml") out.push_back(entry.path());
  std::sort(out.begin(), out.end());
  return out;
}

void expect_same(const Measured& a, const Measured& b, const std::string& field) {
  EXPECT_EQ(a.value, b.value) << field;
  EXPECT_EQ(a.source, b.source) << field;
}

void expect_same(const ClusterSpec& a, const ClusterSpec& b) {
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.kind, b.kind);
  EXPECT_EQ(a.nodes, b.nodes);
  EXPECT_EQ(a.devices_per_node, b.devices_per_node);
  expect_same(a.memory_gib, b.memory_gib, "memory_gib");
  expect_same(a.gemm_tflops_fp32, b.gemm_tflops_fp32, "gemm_tflops_fp32");
  expect_same(a.gemm_tflops_bf16, b.gemm_tflops_bf16, "gemm_tflops_bf16");
  expect_same(a.attention_tflops_fp32, b.attention_tflops_fp32, "attention_tflops_fp32");
  expect_same(a.attention_tflops_bf16, b.attention_tflops_bf16, "attention_tflops_bf16");
  expect_same(a.thread_efficiency, b.thread_efficiency, "thread_efficiency");
  expect_same(a.memory_bandwidth_gbs, b.memory_bandwidth_gbs, "memory_bandwidth_gbs");
  expect_same(a.runtime_overhead_mib, b.runtime_overhead_mib, "runtime_overhead_mib");
  expect_same(a.intra_node.bandwidth_gbs, b.intra_node.bandwidth_gbs, "intra_node.bandwidth_gbs");
  expect_same(a.intra_node.latency_us, b.intra_node.latency_us, "intra_node.latency_us");
  EXPECT_EQ(a.has_inter_node, b.has_inter_node);
  if (a.has_inter_node && b.has_inter_node) {
    expect_same(a.inter_node.bandwidth_gbs, b.inter_node.bandwidth_gbs, "inter_node.bandwidth_gbs");
    expect_same(a.inter_node.latency_us, b.inter_node.latency_us, "inter_node.latency_us");
  }
}

bool sourced(const Measured& m) {
  return !m.source.empty() && (m.source.rfind("measured", 0) == 0 || m.source.rfind("spec", 0) == 0);
}

TEST(ClusterFile, EveryFileLoadsWithSensibleValues) {
  const std::vector<fs::path> files = cluster_files();
  std::vector<std::string> names;
  for (const fs::path& p : files) names.push_back(p.filename().string());
  for (const char* expected :
       {"cpu_ethernet.yaml", "h100_ib.yaml", "h200_ib.yaml", "local.yaml", "local_cluster_1gbit.yaml"})
    EXPECT_NE(std::find(names.begin(), names.end(), expected), names.end()) << expected << " is missing";
  for (const fs::path& p : files) {
    SCOPED_TRACE(p.string());
    const ClusterSpec c = cluster_load(p.string());
    EXPECT_FALSE(c.name.empty());
    EXPECT_TRUE(c.kind == "cpu" || c.kind == "cuda");
    EXPECT_GE(c.nodes, 1);
    EXPECT_GE(c.devices_per_node, 1);
    EXPECT_GT(c.memory_gib.value, 0);
    for (const Measured* m : {&c.memory_gib, &c.gemm_tflops_fp32, &c.gemm_tflops_bf16, &c.attention_tflops_fp32,
                              &c.attention_tflops_bf16, &c.thread_efficiency, &c.memory_bandwidth_gbs,
                              &c.runtime_overhead_mib, &c.intra_node.bandwidth_gbs, &c.intra_node.latency_us}) {
      EXPECT_TRUE(sourced(*m)) << m->source;
      EXPECT_GE(m->value, 0);
    }
    EXPECT_TRUE(c.has_inter_node || c.nodes == 1);
    if (c.has_inter_node) {
      EXPECT_GT(c.inter_node.bandwidth_gbs.value, 0);
      // A message between nodes never arrives sooner than one inside a node. (Bandwidths per rank may go either way:
      // a CPU node's ranks all share its memory bus, while a ring crosses nodes at one rank per node boundary.)
      EXPECT_GE(c.inter_node.latency_us.value, c.intra_node.latency_us.value);
    }
    // bf16 is at least as fast as fp32 in the hand-written files; a file `ringtrain calibrate` wrote holds what this
    // host measured (without AVX512-BF16, bf16 can be the slower one).
    if (c.gemm_tflops_bf16.source.find("ringtrain calibrate") == std::string::npos) {
      EXPECT_GE(c.gemm_tflops_bf16.value, c.gemm_tflops_fp32.value);
      EXPECT_GE(c.attention_tflops_bf16.value, c.attention_tflops_fp32.value);
    }
    // A thread never adds more than a core (calibrate caps its measurement at 1), and never less than a quarter.
    EXPECT_GT(c.thread_efficiency.value, 0.25);
    EXPECT_LE(c.thread_efficiency.value, 1.0);
    // Per device: no CPU core above 1 TFLOP/s, no GPU rate above its datasheet's dense bf16 peak of 2 PFLOP/s.
    EXPECT_LT(c.gemm_tflops_bf16.value, c.kind == "cpu" ? 1.0 : 2000.0);
  }
}

TEST(ClusterFile, RoundTripOfEveryFileIsExact) {
  for (const fs::path& p : cluster_files()) {
    SCOPED_TRACE(p.string());
    const ClusterSpec c = cluster_load(p.string());
    const std::string text = cluster_to_yaml(c);
    expect_same(c, cluster_parse(text, "round trip of " + p.string()));
    EXPECT_NE(text.find(c.memory_per_node() ? "node_memory_gib:" : "device_memory_gib:"), std::string::npos);
    EXPECT_EQ(text.find(c.memory_per_node() ? "device_memory_gib:" : "node_memory_gib:"), std::string::npos);
  }
}

ClusterSpec awkward_spec() {
  ClusterSpec c;
  c.name = "quotes \" and \\ backslash, tab\t, newline\n, bell \x07, UTF-8 \xc2\xb5s, # not a comment";
  c.kind = "cpu";
  c.nodes = 1;
  c.devices_per_node = 3;
  c.memory_gib = {0.1, "measured: 0.1 is not exact in binary"};
  c.gemm_tflops_fp32 = {1.0 / 3.0, "spec: a third"};
  c.gemm_tflops_bf16 = {2.0 / 3.0, "spec: two thirds: with a colon"};
  c.attention_tflops_fp32 = {1e-300, "measured: tiny"};
  c.attention_tflops_bf16 = {1.7976931348623157e308, "measured: the largest double"};
  c.thread_efficiency = {0.9, "spec: 0.9\r with a carriage return"};
  c.memory_bandwidth_gbs = {123456789.123456789, "spec: many digits"};
  c.runtime_overhead_mib = {5e-324, "spec: the smallest subnormal"};
  c.intra_node = {{15, "spec: {braces}, [brackets]"}, {0, "measured: zero latency is allowed"}};
  return c;
}

TEST(ClusterFile, RoundTripKeepsAwkwardValuesAndStrings) {
  ClusterSpec c = awkward_spec();
  std::string text = cluster_to_yaml(c);
  expect_same(c, cluster_parse(text, "awkward"));
  EXPECT_EQ(text.find("inter_node"), std::string::npos) << text;
  EXPECT_EQ(text.find("device_memory_gib"), std::string::npos) << text;

  c.kind = "cuda";
  c.nodes = 1000000;
  c.has_inter_node = true;
  c.inter_node = {{0.125, "measured: shaped"}, {1e6, "spec: a slow satellite link"}};
  text = cluster_to_yaml(c);
  expect_same(c, cluster_parse(text, "awkward cuda"));
  EXPECT_NE(text.find("device_memory_gib"), std::string::npos) << text;
  EXPECT_EQ(text.find("node_memory_gib"), std::string::npos) << text;
}

// A valid cluster file that each bad case below changes in one place.
const char kValid[] = R"(name: "test cluster"
kind: cuda
nodes: 2
devices_per_node: 8
device_memory_gib: {value: 80, source: "spec: datasheet"}
gemm_tflops_fp32: {value: 50, source: "spec: datasheet"}
gemm_tflops_bf16: {value: 600, source: "measured: bench"}
attention_tflops_fp32: {value: 200, source: "spec: datasheet"}
attention_tflops_bf16: {value: 300, source: "spec: datasheet"}
thread_efficiency: {value: 1, source: "spec: one device per rank"}
memory_bandwidth_gbs: {value: 3000, source: "spec: datasheet"}
runtime_overhead_mib: {value: 1500, source: "spec: estimate"}
intra_node:
  bandwidth_gbs: {value: 360, source: "spec: NVLink"}
  latency_us: {value: 3, source: "spec: NVLink"}
inter_node:
  bandwidth_gbs: {value: 46, source: "spec: NDR"}
  latency_us: {value: 5, source: "spec: NDR"}
)";

// kValid with `from` replaced by `to` (from must occur in it).
std::string with(const std::string& from, const std::string& to) {
  std::string text = kValid;
  const size_t at = text.find(from);
  if (at == std::string::npos) throw std::logic_error("test bug: '" + from + "' is not in kValid");
  return text.replace(at, from.size(), to);
}

std::string cpu_valid() {
  std::string text = with("kind: cuda", "kind: cpu");
  return text.replace(text.find("device_memory_gib"), 17, "node_memory_gib");
}

TEST(ClusterFile, ValidVariantsParse) {
  const ClusterSpec c = cluster_parse(kValid, "valid.yaml");
  EXPECT_EQ(c.kind, "cuda");
  EXPECT_EQ(c.nodes, 2);
  EXPECT_EQ(c.memory_gib.value, 80);
  EXPECT_TRUE(c.gemm_tflops_bf16.measured());
  EXPECT_FALSE(c.gemm_tflops_fp32.measured());
  EXPECT_TRUE(c.has_inter_node);
  EXPECT_EQ(c.inter_node.bandwidth_gbs.value, 46);

  const ClusterSpec cpu = cluster_parse(cpu_valid(), "cpu.yaml");
  EXPECT_TRUE(cpu.memory_per_node());
  EXPECT_EQ(cpu.memory_gib.value, 80);

  // One node needs no inter_node; a latency may be 0; numbers may carry a sign or an exponent.
  std::string one = with("nodes: 2", "nodes: 1");
  one = one.substr(0, one.find("inter_node:"));
  const ClusterSpec single = cluster_parse(one, "one.yaml");
  EXPECT_FALSE(single.has_inter_node);
  EXPECT_EQ(cluster_parse(with("{value: 3, source", "{value: 0, source"), "zero.yaml").intra_node.latency_us.value, 0);
  EXPECT_EQ(cluster_parse(with("{value: 50,", "{value: +5e1,"), "exp.yaml").gemm_tflops_fp32.value, 50);
  EXPECT_EQ(cluster_parse(with("devices_per_node: 8", "devices_per_node: +8"), "sign.yaml").devices_per_node, 8);
}

struct BadCase {
  std::string text;
  std::vector<std::string> message_has;  // besides the origin, "bad.yaml"
};

TEST(ClusterFile, BadInputIsOneUserErrorNamingTheFieldAndWhatIsValid) {
  const std::string cpu = cpu_valid();
  auto cpu_with = [&](const std::string& from, const std::string& to) {
    std::string text = cpu;
    return text.replace(text.find(from), from.size(), to);
  };
  const std::vector<BadCase> cases = {
      // The file as a whole.
      {"name: x\nkind: cuda\nnodes: [2\n", {"bad.yaml:", "not valid YAML", "configs/clusters/local.yaml"}},
      {"- name\n- kind\n", {"is a list", "must be a YAML map", "name, kind, nodes"}},
      {"", {"is empty", "must be a YAML map"}},
      {"# only a comment\n", {"is empty", "must be a YAML map"}},
      {"just text", {"is a single value", "must be a YAML map"}},
      // Keys.
      {with("nodes: 2", "nodes: 2\ngpus: 8"), {"bad.yaml:4:", "gpus is not a valid key", "valid keys: name, kind"}},
      {with("  latency_us: {value: 3", "  latency: {value: 3"),
       {"intra_node.latency is not a valid key of intra_node", "valid keys: bandwidth_gbs, latency_us"}},
      {with("{value: 50, source", "{value: 50, sorce"),
       {"gemm_tflops_fp32.sorce is not a valid key", "valid keys: value, source"}},
      {with("nodes: 2", "nodes: 2\nnodes: 3"), {"nodes is given twice", "give each key once"}},
      // Missing fields.
      {with("gemm_tflops_bf16: {value: 600, source: \"measured: bench\"}\n", ""),
       {"gemm_tflops_bf16 is missing", "give it as {value: N, source: \"measured: ...\" or \"spec: ...\"}"}},
      {with("{value: 50, source: \"spec: datasheet\"}", "{source: \"spec: datasheet\"}"),
       {"gemm_tflops_fp32.value is missing", "{value: N, source:"}},
      {with("{value: 50, source: \"spec: datasheet\"}", "{value: 50}"), {"gemm_tflops_fp32.source is missing"}},
      {with("kind: cuda\n", ""), {"kind is missing", "cpu or cuda"}},
      {with("nodes: 2\n", ""), {"nodes is missing", "integer >= 1"}},
      {with("device_memory_gib: {value: 80, source: \"spec: datasheet\"}\n", ""),
       {"device_memory_gib is missing", "{value: N, source:"}},
      {with("  bandwidth_gbs: {value: 360, source: \"spec: NVLink\"}\n", ""),
       {"intra_node.bandwidth_gbs is missing", "{value: N, source:"}},
      {with("inter_node:\n  bandwidth_gbs: {value: 46, source: \"spec: NDR\"}\n  latency_us: {value: 5, source: "
            "\"spec: NDR\"}\n",
            ""),
       {"inter_node is missing but nodes is 2", "must give the link between them", "bandwidth_gbs"}},
      // Wrong types.
      {with("{value: 50,", "{value: fast,"), {"gemm_tflops_fp32.value fast is not a number", "must be a number"}},
      {with("{value: 50,", "{value: \"50\","),
       {"gemm_tflops_fp32.value \"50\" is a quoted string", "must be a number"}},
      {with("{value: 50,", "{value: [50],"), {"gemm_tflops_fp32.value is a list", "must be a number"}},
      {with("gemm_tflops_fp32: {value: 50, source: \"spec: datasheet\"}", "gemm_tflops_fp32: 50"),
       {"gemm_tflops_fp32 is the plain value 50", "give it as {value: 50, source:"}},
      {with("gemm_tflops_fp32: {value: 50, source: \"spec: datasheet\"}", "gemm_tflops_fp32: [50, spec]"),
       {"gemm_tflops_fp32 is a list", "give it as {value: N"}},
      {with("gemm_tflops_fp32: {value: 50, source: \"spec: datasheet\"}", "gemm_tflops_fp32:"),
       {"gemm_tflops_fp32 is empty", "give it as {value: N"}},
      {with("intra_node:\n  bandwidth_gbs: {value: 360, source: \"spec: NVLink\"}\n  latency_us: {value: 3, "
            "source: \"spec: NVLink\"}",
            "intra_node: 360"),
       {"intra_node is a single value", "give it as {bandwidth_gbs: {value: N"}},
      {with("name: \"test cluster\"", "name: {first: a}"), {"name is a map", "must be a string"}},
      {with("name: \"test cluster\"", "name: \"\""), {"name is empty", "give one line"}},
      {with("{value: 50, source: \"spec: datasheet\"}", "{value: 50, source: [spec]}"),
       {"gemm_tflops_fp32.source is a list", "must be a string"}},
      // Impossible values.
      {with("attention_tflops_bf16: {value: 300", "attention_tflops_bf16: {value: 0"),
       {"attention_tflops_bf16.value 0 is impossible", "must be > 0 TFLOP/s"}},
      {with("thread_efficiency: {value: 1,", "thread_efficiency: {value: 0,"),
       {"thread_efficiency.value 0 is impossible", "must be > 0 (a fraction of the 1-thread rate)"}},
      {with("thread_efficiency: {value: 1,", "thread_efficiency: {value: -0.5,"),
       {"thread_efficiency.value -0.5 is impossible", "must be > 0 (a fraction of the 1-thread rate)"}},
      {with("thread_efficiency: {value: 1, source: \"spec: one device per rank\"}\n", ""),
       {"thread_efficiency is missing", "give it as {value: N, source:"}},
      {with("memory_bandwidth_gbs: {value: 3000", "memory_bandwidth_gbs: {value: -1"),
       {"memory_bandwidth_gbs.value -1 is impossible", "must be > 0 GB/s"}},
      {with("device_memory_gib: {value: 80", "device_memory_gib: {value: -80"),
       {"device_memory_gib.value -80 is impossible", "must be > 0 GiB"}},
      {with("runtime_overhead_mib: {value: 1500", "runtime_overhead_mib: {value: 0"),
       {"runtime_overhead_mib.value 0 is impossible", "must be > 0 MiB"}},
      {with("  bandwidth_gbs: {value: 46", "  bandwidth_gbs: {value: 0"),
       {"inter_node.bandwidth_gbs.value 0 is impossible", "must be > 0 GB/s"}},
      {with("  latency_us: {value: 3", "  latency_us: {value: -3"),
       {"intra_node.latency_us.value -3 is impossible", "must be >= 0 microseconds"}},
      {with("{value: 50,", "{value: inf,"), {"gemm_tflops_fp32.value inf is not a finite number", "must be"}},
      {with("{value: 50,", "{value: 1e999,"), {"gemm_tflops_fp32.value 1e999 is not a finite number", "must be"}},
      {with("{value: 50,", "{value: .nan,"), {"gemm_tflops_fp32.value .nan is not a number", "must be"}},
      {with("nodes: 2", "nodes: 0"), {"nodes 0 is impossible", "must be an integer >= 1"}},
      {with("nodes: 2", "nodes: 2.5"), {"nodes 2.5 is not an integer", "must be an integer >= 1"}},
      {with("devices_per_node: 8", "devices_per_node: eight"),
       {"devices_per_node eight is not a number", "must be an integer >= 1"}},
      {with("devices_per_node: 8", "devices_per_node: -8"), {"devices_per_node -8 is impossible", ">= 1"}},
      {with("nodes: 2", "nodes: \"2\""), {"nodes \"2\" is a quoted string", "must be an integer >= 1"}},
      {with("kind: cuda", "kind: gpu"), {"kind gpu is not valid", "must be cpu or cuda"}},
      // Memory of the wrong kind.
      {with("kind: cuda", "kind: cpu"),
       {"device_memory_gib is not valid for kind cpu", "gives node_memory_gib", "its ranks share"}},
      {cpu_with("kind: cpu", "kind: cuda"),
       {"node_memory_gib is not valid for kind cuda", "device_memory_gib", "each GPU's own memory"}},
      {cpu_with("node_memory_gib: {value: 80, source: \"spec: datasheet\"}",
                "node_memory_gib: {value: 80, source: \"spec: datasheet\"}\ndevice_memory_gib: {value: 80, source: "
                "\"spec: datasheet\"}"),
       {"device_memory_gib and node_memory_gib are both given", "only node_memory_gib"}},
      // Sources.
      {with("{value: 50, source: \"spec: datasheet\"}", "{value: 50, source: \"\"}"),
       {"gemm_tflops_fp32.source is empty", "must start with \"measured\"", "\"spec\""}},
      {with("{value: 50, source: \"spec: datasheet\"}", "{value: 50, source: \"guess\"}"),
       {"gemm_tflops_fp32.source \"guess\" is not valid", "must start with \"measured\"", "\"spec\""}},
      {with("  latency_us: {value: 5, source: \"spec: NDR\"}", "  latency_us: {value: 5, source: \"my notes\"}"),
       {"inter_node.latency_us.source \"my notes\" is not valid", "must start with"}},
  };
  int checked = 0;
  for (const BadCase& c : cases) {
    SCOPED_TRACE(c.text);
    ++checked;
    try {
      cluster_parse(c.text, "bad.yaml");
      ADD_FAILURE() << "no error";
    } catch (const UserError& e) {
      const std::string message = e.what();
      EXPECT_EQ(message.rfind("bad.yaml", 0), 0u) << message;
      EXPECT_EQ(message.find('\n'), std::string::npos) << "one line: " << message;
      for (const std::string& part : c.message_has) EXPECT_NE(message.find(part), std::string::npos) << message;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not a UserError: " << e.what();
    } catch (...) {
      ADD_FAILURE() << "not a UserError";
    }
  }
  EXPECT_GE(checked, 12);
}

TEST(ClusterFile, MissingOrUnreadableFileIsAUserError) {
  for (const std::string& path :
       {std::string("/nonexistent/configs/clusters/none.yaml"), rt_test::source_dir() + "/configs/clusters"}) {
    try {
      cluster_load(path);
      ADD_FAILURE() << "no error for " << path;
    } catch (const UserError& e) {
      EXPECT_EQ(std::string(e.what()),
                "cluster file " + path + " cannot be read; give a YAML file such as configs/clusters/local.yaml");
    }
  }
}

TEST(ClusterFile, ErrorsOfALoadedFileNameItsPath) {
  const std::string path = ::testing::TempDir() + "cluster_file_test_bad.yaml";
  std::ofstream(path) << with("nodes: 2", "nodes: 0");
  try {
    cluster_load(path);
    ADD_FAILURE() << "no error";
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(path + ":3: nodes 0 is impossible", 0), 0u) << e.what();
  }
  fs::remove(path);
}

}  // namespace
}  // namespace rt
