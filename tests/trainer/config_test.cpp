// Tests for the config system: shipped files, YAML round trip, --set, and every kind of user error message.
#include "trainer/config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "core/check.h"
#include "trainer/stages.h"
#include "tests/test_paths.h"

namespace rt {
namespace {

namespace fs = std::filesystem;

// A fresh temporary directory per test, removed afterwards.
class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("ringtrain_config_test_" + std::to_string(std::random_device{}()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }

  // The UserError message from loading `text`, or "" when it loads.
  std::string load_error(const std::string& text) {
    try {
      config_load(write("x.yaml", text));
    } catch (const UserError& e) {
      return e.what();
    }
    return "";
  }

  fs::path dir_;
};

std::string set_error(const std::string& assignment) {
  Config config;
  try {
    config_set(config, assignment);
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

std::string validate_error(const Config& config, const ConfigSources& sources = {}) {
  try {
    config_validate(config, sources);
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

// Passes when `message` contains every fragment; prints the message otherwise.
::testing::AssertionResult contains(const std::string& message, std::initializer_list<std::string> fragments) {
  for (const std::string& fragment : fragments)
    if (message.find(fragment) == std::string::npos)
      return ::testing::AssertionFailure() << "'" << message << "' lacks '" << fragment << "'";
  return ::testing::AssertionSuccess();
}

const std::string source_dir = rt_test::source_dir();

TEST(Config, DefaultsValidate) { EXPECT_NO_THROW(config_validate(Config{})); }

TEST(Config, KeysMatchTable) {
  std::vector<std::string> keys = config_keys();
  ASSERT_EQ(keys.size(), 58u);
  EXPECT_EQ(keys.front(), "model.hidden_size");
  EXPECT_EQ(keys.back(), "checkpoint.keep");
  std::string help = config_help();
  for (const std::string& key : keys) EXPECT_NE(help.find(key), std::string::npos) << key;
  EXPECT_TRUE(contains(help, {"model.hidden_size", "integer", "256", "width of the residual stream"}));
  EXPECT_TRUE(contains(help, {"train.lr", "float", "0.003"}));
  EXPECT_TRUE(contains(help, {"model.tie_word_embeddings", "bool", "true"}));
  EXPECT_TRUE(contains(help, {"data.task", "string", "\"copy\""}));
}

TEST(Config, DefaultYamlListsEveryKeyAtItsDefault) {
  ConfigSources sources;
  Config config = config_load(source_dir + "/configs/default.yaml", &sources);
  EXPECT_EQ(config, Config{});
  EXPECT_EQ(sources.size(), config_keys().size());
  for (const std::string& key : config_keys()) EXPECT_TRUE(sources.count(key)) << key << " missing";
  EXPECT_TRUE(contains(sources["model.hidden_size"], {"configs/default.yaml:"}));
}

TEST(Config, TinyYaml) {
  Config config = config_load(source_dir + "/configs/tiny.yaml");
  EXPECT_NO_THROW(config_validate(config));
  EXPECT_EQ(config.model.hidden_size, 128);
  EXPECT_EQ(config.model.num_hidden_layers, 2);
  EXPECT_EQ(config.model.num_attention_heads, 4);
  EXPECT_EQ(config.model.intermediate_size, 256);
  EXPECT_EQ(config.train.seq_len, 64);
  EXPECT_EQ(config.train.steps, 300);
  EXPECT_EQ(config.train.batch_size, 8);
  EXPECT_EQ(config.model.vocab_size, 256);  // not listed: keeps the default
}

// configs/recall.yaml, the recipe that trains recall up to 1024 (docs/benchmarks.md): answers only, four length stages
// at 8k tokens per step, each batch a multiple of the one micro-batch.
TEST(Config, RecallYaml) {
  Config config = config_load(source_dir + "/configs/recall.yaml");
  EXPECT_NO_THROW(config_validate(config));
  EXPECT_EQ(config.data.task, "recall");
  EXPECT_EQ(config.data.train_on, "long_range");
  const std::vector<Stage> stages = stages_parse(config);
  ASSERT_EQ(stages.size(), 4u);
  for (size_t k = 0; k < stages.size(); ++k) EXPECT_NO_THROW(config_validate(stage_config(config, stages, k)));
  EXPECT_EQ(stage_config(config, stages, 3).train.seq_len, 1024);
}

TEST_F(ConfigTest, RoundTripThroughYaml) {
  Config config;
  config.model.hidden_size = 96;
  config.model.rope_theta = 500000.0;
  config.model.rms_norm_eps = 1.234567890123e-6;
  config.model.tie_word_embeddings = false;
  config.model.rope_scaling.rope_type = "yarn";  // a group of keys: a map under model
  config.model.rope_scaling.factor = 4;
  config.model.rope_scaling.original_max_position_embeddings = 2048;
  config.train.lr = 3e-4;
  config.train.min_lr = 0.1 + 0.2;  // not exactly representable as short decimal
  config.train.seed = -7;
  config.data.task = "text";
  config.data.path = "data/my \"quoted\" file: \\ true\t.txt";
  config.log.dir = "123";  // a string that looks like a number
  config.parallel.cp = 4;
  std::string yaml = config_to_yaml(config);
  EXPECT_TRUE(contains(yaml, {"model:\n  hidden_size: 96\n", "parallel:\n  cp: 4\n  dp: 1\n", "rope_theta: 500000.0",
                              "  rope_scaling:\n    rope_type: \"yarn\"\n    factor: 4.0\n", "lr: 0.0003\n",
                              "rms_norm_eps: 1.234567890123e-06"}));
  Config back = config_load(write("resolved.yaml", yaml));
  EXPECT_EQ(back, config) << yaml;
  EXPECT_EQ(back.data.path, config.data.path);
  EXPECT_EQ(back.train.min_lr, config.train.min_lr);
  // Keys appear in definition order (a group's keys one level deeper, under the group's name).
  size_t last = 0;
  for (const std::string& key : config_keys()) {
    const std::string member = key.substr(key.find('.') + 1);
    const size_t dot = member.find('.');
    size_t at =
        yaml.find(dot == std::string::npos ? "\n  " + member + ":" : "\n    " + member.substr(dot + 1) + ":", last);
    ASSERT_NE(at, std::string::npos) << key;
    last = at;
  }
}

TEST_F(ConfigTest, EmptyFileAndEmptySectionGiveDefaults) {
  EXPECT_EQ(config_load(write("empty.yaml", "")), Config{});
  EXPECT_EQ(config_load(write("empty2.yaml", "# nothing\nmodel:\n")), Config{});
}

TEST_F(ConfigTest, FloatsAcceptIntegersAndExponents) {
  Config config = config_load(write("f.yaml", "train:\n  lr: 3e-4\n  grad_clip: 2\n  min_lr: 0\n"));
  EXPECT_DOUBLE_EQ(config.train.lr, 3e-4);
  EXPECT_DOUBLE_EQ(config.train.grad_clip, 2.0);
  EXPECT_DOUBLE_EQ(config.train.min_lr, 0.0);
}

TEST(Config, SetEachType) {
  Config config;
  ConfigSources sources;
  config_set(config, "model.hidden_size=512", &sources);
  config_set(config, "train.lr=2.5e-4", &sources);
  config_set(config, "train.grad_clip=3", &sources);
  config_set(config, "model.tie_word_embeddings=false", &sources);
  config_set(config, "data.path=some/file=with=equals.txt", &sources);
  config_set(config, " data.task = text ", &sources);
  EXPECT_EQ(config.model.hidden_size, 512);
  EXPECT_DOUBLE_EQ(config.train.lr, 2.5e-4);
  EXPECT_DOUBLE_EQ(config.train.grad_clip, 3.0);
  EXPECT_FALSE(config.model.tie_word_embeddings);
  EXPECT_EQ(config.data.path, "some/file=with=equals.txt");
  EXPECT_EQ(config.data.task, "text");
  EXPECT_EQ(sources["model.hidden_size"], "--set");
  config_set(config, "data.path=", &sources);
  EXPECT_EQ(config.data.path, "");
}

TEST_F(ConfigTest, SetOverridesFile) {
  ConfigSources sources;
  Config config = config_load(write("s.yaml", "train:\n  steps: 10\n"), &sources);
  EXPECT_TRUE(contains(sources["train.steps"], {"s.yaml:2"}));
  config_set(config, "train.steps=20", &sources);
  EXPECT_EQ(config.train.steps, 20);
  EXPECT_EQ(sources["train.steps"], "--set");
}

TEST_F(ConfigTest, UnknownKeySuggestsNearest) {
  EXPECT_TRUE(contains(load_error("model:\n  hidden_size: 64\n  hiden_size: 3\n"),
                       {"x.yaml:3: unknown key 'model.hiden_size'; did you mean 'model.hidden_size'?"}));
  EXPECT_TRUE(contains(load_error("train:\n  cp: 2\n"), {"x.yaml:2:", "'train.cp'", "did you mean 'parallel.cp'"}));
  // Nothing close: list the section's keys.
  EXPECT_TRUE(contains(load_error("log:\n  verbosity: 3\n"),
                       {"x.yaml:2: unknown key 'log.verbosity'; valid keys in 'log' are dir, every"}));
}

TEST_F(ConfigTest, UnknownSection) {
  EXPECT_TRUE(
      contains(load_error("modle:\n  hidden_size: 3\n"), {"x.yaml:1: unknown section 'modle'; did you mean 'model'?"}));
  EXPECT_TRUE(contains(load_error("\nseq_len: 64\n"), {"x.yaml:2:", "'seq_len'", "did you mean 'train.seq_len'"}));
  EXPECT_TRUE(contains(load_error("optimizer:\n  lr: 1\n"),
                       {"x.yaml:1:", "valid sections are model, train, data, log, parallel"}));
}

TEST_F(ConfigTest, WrongTypes) {
  EXPECT_TRUE(contains(load_error("model:\n\n\n\n  hidden_size: abc\n"),
                       {"x.yaml:5: model.hidden_size must be an integer, got 'abc'"}));
  EXPECT_TRUE(contains(load_error("model:\n  hidden_size: 1.5\n"), {"x.yaml:2:", "must be an integer, got '1.5'"}));
  EXPECT_TRUE(contains(load_error("model:\n  hidden_size: true\n"), {"must be an integer, got 'true'"}));
  EXPECT_TRUE(contains(load_error("train:\n  lr: fast\n"), {"x.yaml:2: train.lr must be a finite number, got 'fast'"}));
  EXPECT_TRUE(contains(load_error("train:\n  lr: .nan\n"), {"train.lr must be a finite number"}));
  EXPECT_TRUE(contains(load_error("model:\n  tie_word_embeddings: yes\n"),
                       {"x.yaml:2: model.tie_word_embeddings must be true or false, got 'yes'"}));
  EXPECT_TRUE(contains(load_error("model:\n  hidden_size:\n"), {"model.hidden_size must be", "got nothing"}));
}

TEST_F(ConfigTest, StructureErrors) {
  EXPECT_TRUE(
      contains(load_error("model: 3\n"), {"x.yaml:1: section 'model' must be a map of keys", "got a single value"}));
  EXPECT_TRUE(contains(load_error("model:\n  - 1\n"), {"x.yaml:2: section 'model' must be a map", "got a list"}));
  EXPECT_TRUE(
      contains(load_error("model:\n  hidden_size: [1, 2]\n"), {"x.yaml:2: model.hidden_size must be", "got a list"}));
  EXPECT_TRUE(contains(load_error("data:\n  path:\n    a: b\n"), {"x.yaml:2: data.path must be a string, got a map"}));
  EXPECT_TRUE(contains(load_error("- model\n"), {"x.yaml:1: a config file is a map of sections"}));
  EXPECT_TRUE(contains(load_error("train:\n  steps: 1\n  steps: 2\n"),
                       {"x.yaml:3: duplicate key 'train.steps' (first set at", "x.yaml:2)"}));
}

TEST_F(ConfigTest, MalformedYaml) {
  EXPECT_TRUE(
      contains(load_error("model:\n  hidden_size: 64\n  num_hidden_layers: [1, 2\n"), {"x.yaml:", "malformed YAML"}));
  std::string message = load_error("model:\n  hidden_size: 64\n bad: 1\n");
  EXPECT_TRUE(contains(message, {"x.yaml:3: malformed YAML: "})) << message;
}

TEST(Config, MissingFile) {
  try {
    config_load("/nonexistent/x.yaml");
    FAIL() << "no error";
  } catch (const UserError& e) {
    EXPECT_STREQ(e.what(), "cannot read config file '/nonexistent/x.yaml': No such file or directory");
  }
  EXPECT_THROW(config_load(fs::temp_directory_path().string()), UserError);  // a directory
}

TEST(Config, SetErrors) {
  EXPECT_TRUE(
      contains(set_error("model.hiden_size=3"),
               {"--set model.hiden_size=3: unknown key 'model.hiden_size'; did you mean 'model.hidden_size'?"}));
  EXPECT_TRUE(contains(set_error("hidden_size=3"), {"--set hidden_size=3: ", "did you mean 'model.hidden_size'?"}));
  EXPECT_TRUE(contains(set_error("foo"), {"--set foo: ", "section.key=value"}));
  EXPECT_TRUE(contains(set_error("model.hidden_size=abc"),
                       {"--set model.hidden_size=abc: model.hidden_size must be an integer, got 'abc'"}));
  EXPECT_TRUE(contains(set_error("model.hidden_size=1.5"), {"must be an integer"}));
  EXPECT_TRUE(contains(set_error("model.tie_word_embeddings=1"), {"must be true or false, got '1'"}));
  EXPECT_TRUE(contains(set_error("train.lr="), {"train.lr must be a finite number, got ''"}));
  EXPECT_TRUE(
      contains(set_error("zzz.qqq=1"), {"unknown key 'zzz.qqq'", "sections model, train, data, log, parallel"}));
  EXPECT_TRUE(contains(set_error("model.hidden_size=99999999999999999999"), {"an integer that fits in 64 bits"}));
  Config config;
  EXPECT_THROW(config_set(config, "model.hidden_size=x"), UserError);
}

TEST(Config, ValidationErrors) {
  auto with = [](auto change) {
    Config config;
    change(config);
    return validate_error(config);
  };
  EXPECT_TRUE(contains(with([](Config& c) { c.model.hidden_size = 0; }), {"model.hidden_size is 0", "at least 1"}));
  EXPECT_TRUE(contains(with([](Config& c) { c.model.num_attention_heads = 3; }),
                       {"model.hidden_size 256 is not divisible by model.num_attention_heads = 3"}));
  EXPECT_TRUE(contains(with([](Config& c) { c.model.num_key_value_heads = 3; }),
                       {"model.num_attention_heads 4 is not divisible by model.num_key_value_heads = 3"}));
  EXPECT_TRUE(contains(with([](Config& c) { c.model.hidden_size = 36; }), {"head_dim", "= 9 must be even"}));
  EXPECT_TRUE(
      contains(with([](Config& c) { c.model.vocab_size = 70000; }), {"model.vocab_size is 70000", "[1, 65536]"}));
  EXPECT_TRUE(contains(with([](Config& c) { c.train.seq_len = 1; }), {"train.seq_len is 1", "at least 2"}));
  EXPECT_TRUE(contains(with([](Config& c) { c.train.batch_size = 6, c.train.micro_batch_size = 2, c.parallel.dp = 2; }),
                       {"train.batch_size 6 is not divisible by train.micro_batch_size * parallel.dp = 2 * 2 = 4"}));
  EXPECT_TRUE(contains(with([](Config& c) { c.train.lr = 0; }), {"train.lr is 0.0", "> 0"}));
  EXPECT_TRUE(
      contains(with([](Config& c) { c.train.min_lr = 0.01; }), {"train.min_lr is 0.01", "[0, train.lr = 0.003]"}));
  EXPECT_TRUE(contains(with([](Config& c) { c.train.beta2 = 1.0; }), {"train.beta2 is 1.0", "[0, 1)"}));
  EXPECT_TRUE(contains(with([](Config& c) { c.train.eps = 0; }), {"train.eps"}));
  EXPECT_TRUE(contains(with([](Config& c) { c.train.grad_clip = -1; }), {"train.grad_clip is -1.0"}));
  EXPECT_TRUE(contains(with([](Config& c) { c.train.warmup_steps = -1; }), {"train.warmup_steps is -1"}));
  EXPECT_TRUE(contains(with([](Config& c) { c.log.every = 0; }), {"log.every is 0"}));
  EXPECT_TRUE(contains(with([](Config& c) { c.train.precision = "fp16"; }),
                       {"train.precision 'fp16' is not known; valid: fp32, bf16"}));
  EXPECT_EQ(with([](Config& c) { c.train.precision = "bf16"; }), "");
  EXPECT_TRUE(contains(with([](Config& c) { c.data.train_on = "answers"; }),
                       {"data.train_on 'answers' is not known; valid: all, long_range"}));
  EXPECT_TRUE(contains(with([](Config& c) { c.data.train_on = "long_range", c.data.task = "text", c.data.path = "a"; }),
                       {"data.train_on=long_range needs a task with long-range labels", "not text"}));
  EXPECT_EQ(with([](Config& c) { c.data.train_on = "long_range", c.data.task = "recall"; }), "");
  EXPECT_TRUE(contains(with([](Config& c) { c.data.task = "cpy"; }),
                       {"data.task 'cpy' is not one of copy, recall, passkey, text, shards"}));
  EXPECT_TRUE(
      contains(with([](Config& c) { c.data.task = "text"; }), {"data.path is required when data.task is 'text'"}));
  EXPECT_EQ(with([](Config& c) { c.data.task = "text", c.data.path = "x.txt"; }), "");
  EXPECT_TRUE(contains(with([](Config& c) { c.parallel.dp = 0; }), {"parallel.dp is 0"}));
  EXPECT_TRUE(contains(with([](Config& c) { c.checkpoint.every = -1; }), {"checkpoint.every is -1"}));
  EXPECT_TRUE(contains(with([](Config& c) { c.checkpoint.keep = -2; }), {"checkpoint.keep is -2", "0 (keep all)"}));
  EXPECT_EQ(with([](Config& c) { c.train.seq_len = 1000, c.parallel.cp = 8; }), "") << "padded to 1008";
  EXPECT_EQ(with([](Config& c) { c.train.seq_len = 1024, c.parallel.cp = 8; }), "");
}

TEST_F(ConfigTest, ValidationNamesTheSource) {
  ConfigSources sources;
  Config config = config_load(write("v.yaml", "model:\n  hidden_size: 64\n  num_attention_heads: 3\n"), &sources);
  EXPECT_TRUE(contains(validate_error(config, sources), {"v.yaml:2: model.hidden_size 64 is not divisible"}));
  config_set(config, "model.num_attention_heads=4", &sources);
  config_set(config, "train.beta1=1.5", &sources);
  EXPECT_TRUE(contains(validate_error(config, sources), {"--set: train.beta1 is 1.5; it must be in [0, 1)"}));
  EXPECT_THROW(config_validate(config, sources), UserError);
}

// model.rope_scaling: a map of HF's keys under model (or --set model.rope_scaling.KEY), each type's required keys.
TEST_F(ConfigTest, RopeScalingMapAndItsErrors) {
  ConfigSources sources;
  Config config = config_load(write("r.yaml",
                                    "model:\n  rope_theta: 500000\n  rope_scaling: {rope_type: llama3, "
                                    "factor: 8.0, original_max_position_embeddings: 8192}\n"),
                              &sources);
  EXPECT_EQ(config.model.rope_scaling.rope_type, "llama3");
  EXPECT_EQ(config.model.rope_scaling.factor, 8.0);
  EXPECT_EQ(config.model.rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_EQ(config.model.rope_scaling.high_freq_factor, 4.0) << "a key left out keeps its default";
  EXPECT_NO_THROW(config_validate(config, sources));
  EXPECT_EQ(config_load(write("e.yaml", "model:\n  rope_scaling:\n")), Config{}) << "an empty group";
  EXPECT_TRUE(contains(load_error("model:\n  rope_scaling:\n    fator: 2\n"),
                       {":3: unknown key 'model.rope_scaling.fator'", "rope_scaling.factor"}));
  config_set(config, "model.rope_scaling.rope_type=longrope", &sources);
  EXPECT_TRUE(contains(validate_error(config, sources),
                       {"--set: model.rope_scaling.rope_type 'longrope' is not known; valid: default, linear, "
                        "dynamic, yarn, llama3"}));
  config_set(config, "model.rope_scaling.rope_type=yarn", &sources);
  config_set(config, "model.rope_scaling.original_max_position_embeddings=0", &sources);
  EXPECT_TRUE(contains(validate_error(config, sources),
                       {"model.rope_scaling.original_max_position_embeddings is required for rope_type 'yarn'"}));
  config_set(config, "model.rope_scaling.original_max_position_embeddings=1024", &sources);
  config_set(config, "model.rope_scaling.factor=0.5", &sources);
  EXPECT_TRUE(contains(validate_error(config, sources), {"model.rope_scaling.factor is 0.5; it must be >= 1"}));
}

// train.stages: a YAML list kept as its one-line flow text, which reads back the same (trainer/stages.h parses it).
TEST_F(ConfigTest, StagesListRoundTrips) {
  Config config = config_load(write("s.yaml",
                                    "train:\n  stages:\n    - {steps: 2, seq_len: 64}\n    - steps: 3\n"
                                    "      rope_scaling: {rope_type: linear, factor: 2.0}\n"));
  EXPECT_EQ(config.train.stages,
            "[{steps: 2, seq_len: 64}, {steps: 3, rope_scaling: {rope_type: linear, factor: 2.0}}]");
  EXPECT_EQ(config_load(write("back.yaml", config_to_yaml(config))), config);
}

// data.path as a YAML list (each text file a document): kept as its text, read back by data_paths, and written out
// so that it loads again; a lone path is a list of one; an empty list or nested entries are refused.
TEST_F(ConfigTest, DataPathListRoundTrips) {
  Config config = config_load(write("d.yaml", "data:\n  task: text\n  path:\n    - a.txt\n    - docs/\n"));
  EXPECT_EQ(config.data.path, "[a.txt, docs/]");
  EXPECT_EQ(data_paths(config.data), (std::vector<std::string>{"a.txt", "docs/"}));
  EXPECT_EQ(config_load(write("back.yaml", config_to_yaml(config))), config);
  config.data.path = "one.txt";
  EXPECT_EQ(data_paths(config.data), (std::vector<std::string>{"one.txt"}));
  config.data.path = "";
  EXPECT_TRUE(data_paths(config.data).empty());
  for (const char* bad : {"[]", "[[a, b]]", "[a, {b"}) {
    config.data.path = bad;
    EXPECT_THROW(data_paths(config.data), UserError) << bad;
  }
}

}  // namespace
}  // namespace rt
