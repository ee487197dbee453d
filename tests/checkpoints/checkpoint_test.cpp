// The checkpoint library: safetensors layout, write/read round trip, latest and pruning, corruption and
// truncation named, leftovers of interrupted writes, and an independent (Python) reader of our files.
#include "checkpoints/checkpoint.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "checkpoints/safetensors.h"
#include "core/check.h"
#include "core/tensor.h"
#include "tests/checkpoints/corrupt.h"
#include "tests/test_process.h"

namespace rt {
namespace {

namespace fs = std::filesystem;

// tests/checkpoints/read_safetensors.py, an independent reader (Python's standard library only), on a checkpoint.
std::string reader_command(const std::string& dir) {
  return rt_test::python3() + " " + rt_test::source_dir() + "/tests/checkpoints/read_safetensors.py " + dir;
}
using rt_test::contains;
using rt_test::flip_byte;

// A small Llama (2 layers, hidden 8, GQA 4/2 heads, MLP 12, vocab 16, untied) as checkpoint contents, with
// random values, so the Python reader can check the Hugging Face names and shapes against config.json.
struct TinyState {
  std::vector<std::vector<float>> storage;
  CheckpointContents contents;

  explicit TinyState(int64_t step, uint32_t seed = 1) {
    const int64_t c = 8, v = 16, i = 12, h = 4, hk = 2, d = 2;
    std::vector<std::pair<std::string, std::vector<int64_t>>> shapes = {{"model.embed_tokens.weight", {v, c}}};
    for (int l = 0; l < 2; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      shapes.insert(shapes.end(), {{p + "input_layernorm.weight", {c}},
                                   {p + "self_attn.q_proj.weight", {h * d, c}},
                                   {p + "self_attn.k_proj.weight", {hk * d, c}},
                                   {p + "self_attn.v_proj.weight", {hk * d, c}},
                                   {p + "self_attn.o_proj.weight", {c, h * d}},
                                   {p + "post_attention_layernorm.weight", {c}},
                                   {p + "mlp.gate_proj.weight", {i, c}},
                                   {p + "mlp.up_proj.weight", {i, c}},
                                   {p + "mlp.down_proj.weight", {c, i}}});
    }
    shapes.insert(shapes.end(), {{"model.norm.weight", {c}}, {"lm_head.weight", {v, c}}});
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.f, 1.f);
    storage.reserve(3 * shapes.size());
    auto make = [&](const std::string& name, const std::vector<int64_t>& shape) {
      storage.emplace_back(static_cast<size_t>(shape_numel(shape)));
      for (float& x : storage.back()) x = normal(rng);
      return HostTensor{name, shape, storage.back().data()};
    };
    for (const auto& [name, shape] : shapes) {
      contents.model.push_back(make(name, shape));
      contents.optimizer.push_back(make(name + ".exp_avg", shape));
      contents.optimizer.push_back(make(name + ".exp_avg_sq", shape));
    }
    CheckpointInfo& info = contents.info;
    info.step = step;
    info.tokens_seen = step * 1024;
    info.optimizer_step = step;
    info.data_task = "copy";
    info.next_sequence = step * 4;
    info.sequences_per_step = 4;
    info.rng = {{"data", "splitmix64", 1234, static_cast<uint64_t>(step * 4)}};
    info.world_size = 2;
    info.cp = 2;
    info.dp = 1;
    info.sharding = "zigzag";
    info.config_yaml = "model:\n  hidden_size: 8\n";
    contents.hf_config_json = nlohmann::json{
        {"architectures", {"LlamaForCausalLM"}},
        {"model_type", "llama"},
        {"hidden_size", c},
        {"intermediate_size", i},
        {"num_hidden_layers", 2},
        {"num_attention_heads", h},
        {"num_key_value_heads", hk},
        {"head_dim", d},
        {"vocab_size", v},
        {"tie_word_embeddings",
         false}}.dump();
  }
};

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("ringtrain_checkpoint_test_" + std::to_string(getpid()) + "_" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  std::string write(int64_t step, int64_t keep = 0) {
    return checkpoint_write(root_.string(), TinyState(step).contents, keep).dir;
  }

  // The UserError message of reading `dir`, or "" when it verifies.
  static std::string read_error(const std::string& dir) {
    try {
      checkpoint_read(dir);
    } catch (const UserError& e) {
      return e.what();
    }
    return "";
  }

  fs::path root_;
};

TEST(Safetensors, HeaderParsesBackAndIsAligned) {
  std::vector<float> a(6, 1.5f);
  int64_t step = 7;
  std::vector<SafetensorsTensor> tensors = {{"a", "F32", {2, 3}, a.data(), 24}, {"step", "I64", {}, &step, 8}};
  const std::string header = safetensors_header(tensors, {{"format", "pt"}});
  EXPECT_EQ(header.size() % 8, 0u);
  std::string file = header + std::string(reinterpret_cast<const char*>(a.data()), 24) +
                     std::string(reinterpret_cast<const char*>(&step), 8);
  SafetensorsIndex index = safetensors_parse(file.data(), file.size(), "f");
  ASSERT_EQ(index.tensors.size(), 2u);
  EXPECT_EQ(index.data_start, header.size());
  EXPECT_EQ(index.tensors[0].name, "a");
  EXPECT_EQ(index.tensors[0].offset, header.size());
  EXPECT_EQ(index.tensors[0].shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(index.tensors[1].dtype, "I64");
  EXPECT_TRUE(index.tensors[1].shape.empty());
  EXPECT_EQ(index.metadata.at("format"), "pt");
  // A file one byte short, a gap, or a dtype we do not read are refused, naming the file.
  EXPECT_THROW(safetensors_parse(file.data(), file.size() - 1, "f"), UserError);
  std::string gap = file;
  gap.replace(gap.find("[0,24]"), 6, "[0,20]");
  EXPECT_THROW(safetensors_parse(gap.data(), gap.size(), "f"), UserError);
  std::string f16 = file;
  f16.replace(f16.find("\"F32\""), 5, "\"F16\"");
  try {
    safetensors_parse(f16.data(), f16.size(), "some.safetensors");
    FAIL() << "F16 accepted";
  } catch (const UserError& e) {
    EXPECT_TRUE(contains(e.what(), {"some.safetensors", "F16"}));
  }
}

TEST_F(CheckpointTest, WriteReadRoundTrip) {
  TinyState state(42);
  CheckpointSaved saved = checkpoint_write(root_.string(), state.contents, 3);
  EXPECT_EQ(saved.dir, (root_ / "step_00000042").string());
  EXPECT_GT(saved.bytes, 3 * 4 * 200u);
  for (const char* file : {"manifest.pb", "model.safetensors", "optimizer.safetensors", "config.json"})
    EXPECT_TRUE(fs::exists(root_ / "step_00000042" / file)) << file;
  std::string latest;
  std::ifstream(root_ / "latest") >> latest;
  EXPECT_EQ(latest, "step_00000042");
  for (const auto& e : fs::directory_iterator(root_))
    EXPECT_EQ(e.path().filename().string().rfind(".tmp", 0), std::string::npos) << "temporary left: " << e.path();

  Checkpoint c = checkpoint_read(saved.dir);
  const CheckpointInfo& info = c.info();
  const CheckpointInfo& want = state.contents.info;
  EXPECT_EQ(info.step, 42);
  EXPECT_EQ(info.tokens_seen, want.tokens_seen);
  EXPECT_EQ(info.optimizer_step, 42);
  EXPECT_EQ(info.data_task, "copy");
  EXPECT_EQ(info.next_sequence, want.next_sequence);
  EXPECT_EQ(info.sequences_per_step, 4);
  ASSERT_EQ(info.rng.size(), 1u);
  EXPECT_EQ(info.rng[0].seed, 1234u);
  EXPECT_EQ(info.rng[0].counter, 168u);
  EXPECT_EQ(info.world_size, 2);
  EXPECT_EQ(info.cp, 2);
  EXPECT_EQ(info.sharding, "zigzag");
  EXPECT_EQ(info.config_yaml, want.config_yaml);
  EXPECT_FALSE(info.created_utc.empty());
  for (const auto& [file, tensors] :
       {std::pair{kModelFile, &state.contents.model}, std::pair{kOptimizerFile, &state.contents.optimizer}}) {
    ASSERT_EQ(c.tensors(file).size(), tensors->size() + (file == std::string(kOptimizerFile)));
    for (const HostTensor& t : *tensors) {
      const float* data = c.f32(file, t.name);
      ASSERT_NE(data, nullptr) << t.name;
      EXPECT_EQ(std::memcmp(data, t.data, static_cast<size_t>(shape_numel(t.shape)) * 4), 0) << t.name;
    }
  }
  EXPECT_EQ(c.f32(kModelFile, "no.such.tensor"), nullptr);
}

TEST_F(CheckpointTest, KeepRemovesOldestOnlyAfterTheNewOneIsComplete) {
  for (int64_t step : {10, 20, 30}) write(step, 2);
  EXPECT_FALSE(fs::exists(root_ / "step_00000010"));
  EXPECT_TRUE(fs::exists(root_ / "step_00000020"));
  EXPECT_TRUE(fs::exists(root_ / "step_00000030"));
  // keep = 0 keeps everything.
  write(40, 0);
  EXPECT_TRUE(fs::exists(root_ / "step_00000020"));
  // A checkpoint of a later step (from before a resume from an earlier one) is never pruned.
  write(25, 1);
  EXPECT_TRUE(fs::exists(root_ / "step_00000030"));
  EXPECT_TRUE(fs::exists(root_ / "step_00000040"));
  EXPECT_FALSE(fs::exists(root_ / "step_00000020"));
}

TEST_F(CheckpointTest, CandidatesStartAtLatestThenOlder) {
  write(1), write(2), write(3);
  EXPECT_EQ(checkpoint_candidates(root_.string()),
            (std::vector<std::string>{(root_ / "step_00000003").string(), (root_ / "step_00000002").string(),
                                      (root_ / "step_00000001").string()}));
  write(2);  // re-saved (resumed from step 1): latest names step 2; step 3 belongs to the abandoned run
  EXPECT_EQ(checkpoint_candidates(root_.string()),
            (std::vector<std::string>{(root_ / "step_00000002").string(), (root_ / "step_00000001").string()}));
  fs::remove(root_ / "latest");  // no pointer: every checkpoint, newest first
  EXPECT_EQ(checkpoint_candidates(root_.string()).front(), (root_ / "step_00000003").string());
  EXPECT_TRUE(checkpoint_candidates((root_ / "nothing_here").string()).empty());
}

TEST_F(CheckpointTest, InterruptedWriteIsIgnoredThenCleanedUp) {
  write(5);
  // What a write killed midway leaves: a temporary directory with part of the files.
  fs::create_directories(root_ / ".tmp_step_00000006");
  std::ofstream(root_ / ".tmp_step_00000006" / "model.safetensors") << "partial";
  EXPECT_EQ(checkpoint_candidates(root_.string()), (std::vector<std::string>{(root_ / "step_00000005").string()}));
  EXPECT_FALSE(checkpoint_is_one((root_ / ".tmp_step_00000006").string()));
  write(6);
  EXPECT_FALSE(fs::exists(root_ / ".tmp_step_00000006"));
  EXPECT_EQ(read_error((root_ / "step_00000006").string()), "");
}

TEST_F(CheckpointTest, FlippedByteInATensorNamesFileAndTensor) {
  const std::string dir = write(7);
  // Byte 100 of the first layer's q_proj in model.safetensors.
  std::ifstream in(fs::path(dir) / kModelFile, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  SafetensorsIndex index = safetensors_parse(bytes.data(), bytes.size(), "model");
  auto q = std::find_if(index.tensors.begin(), index.tensors.end(),
                        [](const auto& t) { return t.name == "model.layers.0.self_attn.q_proj.weight"; });
  ASSERT_NE(q, index.tensors.end());
  flip_byte(fs::path(dir) / kModelFile, q->offset + 100);
  EXPECT_TRUE(contains(read_error(dir), {dir + "/model.safetensors", "tensor model.layers.0.self_attn.q_proj.weight",
                                         "fails its checksum"}));
}

TEST_F(CheckpointTest, FlippedByteInAHeaderNamesTheFile) {
  const std::string dir = write(8);
  flip_byte(fs::path(dir) / kOptimizerFile, 20);  // inside the JSON header
  EXPECT_TRUE(contains(read_error(dir), {dir + "/optimizer.safetensors", "checksum", "header"}));
}

TEST_F(CheckpointTest, FlippedByteInTheManifestOrConfigIsCaught) {
  const std::string dir = write(9);
  flip_byte(fs::path(dir) / "config.json", 3);
  EXPECT_TRUE(contains(read_error(dir), {dir + "/config.json", "checksum"}));
  const std::string other = write(10);
  flip_byte(fs::path(other) / "manifest.pb", 30);
  EXPECT_TRUE(contains(read_error(other), {other + "/manifest.pb is corrupt", "checksum"}));
}

TEST_F(CheckpointTest, TruncatedFileNamesFileAndIncompleteTensor) {
  const std::string dir = write(11);
  const fs::path file = fs::path(dir) / kOptimizerFile;
  fs::resize_file(file, fs::file_size(file) / 2);
  EXPECT_TRUE(contains(read_error(dir), {dir + "/optimizer.safetensors has ", "truncated", "is incomplete"}));
  const std::string other = write(12);
  fs::remove(fs::path(other) / kModelFile);
  EXPECT_TRUE(contains(read_error(other), {other + "/model.safetensors", "No such file"}));
  EXPECT_TRUE(contains(read_error((root_ / "step_99").string()), {"step_99", "does not exist"}));
}

TEST_F(CheckpointTest, InspectPrintsTheManifestAndVerdicts) {
  const std::string dir = write(13);
  char* text = nullptr;
  size_t size = 0;
  std::FILE* out = open_memstream(&text, &size);
  checkpoint_inspect(root_.string(), out);  // the root: its latest
  std::fclose(out);
  std::string printed(text, size);
  free(text);
  EXPECT_TRUE(contains(
      printed, {"checkpoint  " + dir, "step        13 (optimizer step 13), 13312 tokens seen",
                "mesh        2 ranks = dp 1 x cp 2, zigzag sharding", "hidden_size: 8", "ok   model.safetensors",
                "model.layers.1.mlp.down_proj.weight", "[8, 12]", "verified: 3 files and"}));
  flip_byte(fs::path(dir) / kModelFile, fs::file_size(fs::path(dir) / kModelFile) - 1);  // lm_head's last value
  out = open_memstream(&text, &size);
  EXPECT_THROW(checkpoint_inspect(dir, out), UserError);
  std::fclose(out);
  printed.assign(text, size);
  free(text);
  EXPECT_TRUE(contains(printed, {"BAD  model.safetensors", "lm_head.weight", "problems"}));
}

// Our safetensors, read by an independent reader written from the format's specification (Python, standard
// library only): the same tensors, shapes and values, and the Hugging Face Llama names config.json implies.
TEST_F(CheckpointTest, IndependentReaderSeesOurLayout) {
  if (!rt_test::runnable(rt_test::python3())) GTEST_SKIP() << "no python3 at " << rt_test::python3();
  TinyState state(14);
  const std::string dir = checkpoint_write(root_.string(), state.contents, 0).dir;
  rt_test::Outcome o = rt_test::run_command(reader_command(dir));
  ASSERT_EQ(o.code, 0) << o.output;
  const nlohmann::json read = nlohmann::json::parse(o.output);
  EXPECT_EQ(read[kModelFile]["metadata"]["format"], "pt");
  for (const auto& [file, tensors] :
       {std::pair{kModelFile, &state.contents.model}, std::pair{kOptimizerFile, &state.contents.optimizer}}) {
    for (const HostTensor& t : *tensors) {
      const nlohmann::json& r = read[file]["tensors"][t.name];
      const size_t n = static_cast<size_t>(shape_numel(t.shape));
      double sum = 0;
      for (size_t i = 0; i < n; ++i) sum += t.data[i];
      EXPECT_EQ(r["dtype"], "F32") << t.name;
      EXPECT_EQ(r["shape"].get<std::vector<int64_t>>(), t.shape) << t.name;
      EXPECT_EQ(r["sum"].get<double>(), sum) << t.name;  // same values, summed in the same order
      EXPECT_EQ(r["first"].get<double>(), t.data[0]) << t.name;
      EXPECT_EQ(r["last"].get<double>(), t.data[n - 1]) << t.name;
    }
  }
  EXPECT_EQ(read[kOptimizerFile]["tensors"]["step"]["first"].get<double>(), 14.0);
  // The reader refuses a model without the Hugging Face names: rename a tensor, keeping the file valid.
  std::string bytes;
  {
    std::ifstream in(fs::path(dir) / kModelFile, std::ios::binary);
    bytes.assign((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  bytes.replace(bytes.find("model.norm.weight"), 17, "model.norm.wEight");
  std::ofstream(fs::path(dir) / kModelFile, std::ios::binary) << bytes;
  o = rt_test::run_command(reader_command(dir));
  EXPECT_EQ(o.code, 1);
  EXPECT_TRUE(contains(o.output, {"model.norm.weight", "model.norm.wEight"}));
}

}  // namespace
}  // namespace rt
