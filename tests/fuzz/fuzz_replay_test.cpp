// Every fuzz target over its committed inputs, in every build (no libFuzzer needed): the seeds in
// tests/fuzz/corpus/<target>/ are real files and must be accepted; the inputs in tests/fuzz/regressions/<target>/
// (what fuzzing once found) must end in a result or a rt::UserError, which the target checks itself.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "tests/fuzz/fuzz_targets.h"
#include "tests/test_paths.h"

namespace {

namespace fs = std::filesystem;

std::vector<fs::path> inputs(const std::string& kind, const std::string& target) {
  std::vector<fs::path> out;
  const fs::path dir = fs::path(rt_test::source_dir()) / "tests/fuzz" / kind / target;
  if (fs::is_directory(dir))
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_regular_file()) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

std::string bytes_of(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class FuzzReplay : public testing::TestWithParam<rt::fuzz::Target> {};

TEST_P(FuzzReplay, SeedsAreAcceptedAndRegressionsEndCleanly) {
  const rt::fuzz::Target& target = GetParam();
  const std::vector<fs::path> seeds = inputs("corpus", target.name);
  EXPECT_GE(seeds.size(), 2u) << "tests/fuzz/corpus/" << target.name << " (tests/fuzz/make_seeds.sh writes it)";
  for (const fs::path& seed : seeds) {
    const std::string b = bytes_of(seed);
    EXPECT_TRUE(target.run(reinterpret_cast<const uint8_t*>(b.data()), b.size())) << seed << " is refused";
  }
  for (const fs::path& input : inputs("regressions", target.name)) {
    const std::string b = bytes_of(input);
    target.run(reinterpret_cast<const uint8_t*>(b.data()), b.size());  // a crash here fails the test
  }
}

INSTANTIATE_TEST_SUITE_P(Targets, FuzzReplay, testing::ValuesIn(rt::fuzz::targets()),
                         [](const testing::TestParamInfo<rt::fuzz::Target>& p) { return std::string(p.param.name); });

}  // namespace
