// The ringtrain program as a user runs it: --help, config mistakes (exit 2, one clear sentence), mpirun launches.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "core/backend.h"
#include "tests/test_process.h"
#include "trainer/config.h"
#include "trainer/tensorboard.h"

namespace {

namespace fs = std::filesystem;

using rt_test::Outcome;
using rt_test::run_command;

Outcome run(const std::string& args) { return run_command(rt_test::program(RINGTRAIN_BIN) + " " + args); }

fs::path temp_dir() {
  fs::path d = fs::temp_directory_path() / ("ringtrain_cli_" + std::to_string(getpid()));
  fs::create_directories(d);
  return d;
}

std::string write_file(const std::string& name, const std::string& text) {
  fs::path p = temp_dir() / name;
  std::ofstream(p) << text;
  return p.string();
}

// Exit code 2, one line starting "ringtrain: error:", containing every fragment, and no stack trace.
void expect_user_error(const Outcome& o, std::initializer_list<std::string> fragments) {
  EXPECT_EQ(o.code, 2) << o.output;
  EXPECT_NE(o.output.find("ringtrain: error: "), std::string::npos) << o.output;
  for (const std::string& f : fragments)
    EXPECT_NE(o.output.find(f), std::string::npos) << "missing '" << f << "' in: " << o.output;
  EXPECT_EQ(o.output.find("terminate called"), std::string::npos) << o.output;
  EXPECT_EQ(o.output.find("step 1/"), std::string::npos) << "training started despite the error: " << o.output;
}

TEST(Cli, HelpListsEveryKeyWithDefault) {
  Outcome o = run("--help");
  EXPECT_EQ(o.code, 0);
  for (const std::string& key : rt::config_keys()) EXPECT_NE(o.output.find(key), std::string::npos) << key;
  EXPECT_NE(o.output.find("train"), std::string::npos);
  EXPECT_NE(o.output.find("1024"), std::string::npos);  // a default is shown
}

TEST(Cli, UnknownKeyNamesFileLineAndNearestKey) {
  std::string f = write_file("typo.yaml", "model:\n  hidden_size: 64\n  num_hiden_layers: 2\n");
  expect_user_error(run("train --config " + f), {"typo.yaml:3", "model.num_hiden_layers", "model.num_hidden_layers"});
}

TEST(Cli, WrongTypeNamesKeyAndType) {
  std::string f = write_file("type.yaml", "train:\n  steps: many\n");
  expect_user_error(run("train --config " + f), {"type.yaml:2", "train.steps", "integer", "many"});
}

TEST(Cli, ImpossibleValueSaysWhatIsValid) {
  expect_user_error(run("train --set model.num_attention_heads=3"), {"model.hidden_size", "model.num_attention_heads"});
  expect_user_error(run("train --set train.lr=-1"), {"train.lr"});
}

TEST(Cli, BadSetSyntax) { expect_user_error(run("train --set train.steps"), {"--set", "section.key=value"}); }

TEST(Cli, MissingConfigFile) { expect_user_error(run("train --config /nonexistent/x.yaml"), {"/nonexistent/x.yaml"}); }

TEST(Cli, MissingDataFile) {
  expect_user_error(run("train --set data.task=shards --set data.path=/nonexistent/*.bin --set log.dir=" +
                        (temp_dir() / "run").string()),
                    {"/nonexistent/*.bin"});
}

TEST(Cli, TrainsAndWritesRunDirectory) {
  fs::path dir = temp_dir() / "tiny_run";
  Outcome o = run("train --config " + rt_test::source_dir() +
                  "/configs/tiny.yaml --set train.steps=3 --set log.every=1 --set log.dir=" + dir.string());
  ASSERT_EQ(o.code, 0) << o.output;
  EXPECT_NE(o.output.find("step 3/3 | loss "), std::string::npos) << o.output;
  EXPECT_TRUE(fs::exists(dir / "config.yaml"));
  std::ifstream metrics(dir / "metrics.jsonl");
  std::string line;
  int lines = 0;
  while (std::getline(metrics, line)) {
    ++lines;
    for (const char* field :
         {"\"step\"", "\"loss\"", "\"lr\"", "\"grad_norm\"", "\"tokens_per_s\"", "\"long_range_loss\""})
      EXPECT_NE(line.find(field), std::string::npos) << field << " in " << line;
    // The step by part (CPU): GEMMs and flash attention ran, inside the step's time; one rank waits for nobody.
    const nlohmann::json j = nlohmann::json::parse(line);
    ASSERT_TRUE(j.contains("gemm_ms") && j.contains("attention_ms") && j.contains("comm_wait_ms")) << line;
    EXPECT_GT(j["gemm_ms"].get<double>(), 0) << line;
    EXPECT_GT(j["attention_ms"].get<double>(), 0) << line;
    EXPECT_LT(j["gemm_ms"].get<double>() + j["attention_ms"].get<double>(), j["ms_per_step"].get<double>()) << line;
    EXPECT_LT(j["comm_wait_ms"].get<double>(), 0.1 * j["ms_per_step"].get<double>()) << line;
  }
  EXPECT_EQ(lines, 3);
  EXPECT_NE(o.output.find("time | per step, rank 0, median of steps 2-3: "), std::string::npos) << o.output;
  // The resolved config is a valid config that reproduces the run's settings.
  rt::Config resolved = rt::config_load((dir / "config.yaml").string());
  EXPECT_EQ(resolved.train.steps, 3);
  EXPECT_EQ(resolved.model.hidden_size, 128);
}

Outcome mpirun(int ranks, const std::string& args) {
  return run_command(std::string("timeout 300 ") + rt_test::mpiexec() + " -n " + std::to_string(ranks) +
                     " --oversubscribe --allow-run-as-root --mca btl self,vader " + rt_test::program(RINGTRAIN_BIN) +
                     " " + args);
}

// A real mpirun launch whose rank count does not match parallel.cp * parallel.dp: the job stops with the
// message and exit code 2; no rank hangs.
TEST(Cli, RankCountMismatchUnderMpirun) {
  Outcome o = mpirun(2, "train --config " + rt_test::source_dir() +
                            "/configs/tiny.yaml --set log.dir=" + (temp_dir() / "mpi").string());
  EXPECT_EQ(o.code, 2) << o.output;
  EXPECT_NE(o.output.find("parallel.cp * parallel.dp = 1 * 1 = 1 but the job has 2 ranks"), std::string::npos)
      << o.output;
}

// Ulysses layouts the heads or the job cannot hold: one sentence naming the keys and what is valid, exit 2, before any
// step (on one rank, and under a real mpirun).
TEST(Cli, UlyssesLayoutMistakesSayWhatIsValid) {
  const std::string tiny = "train --config " + rt_test::source_dir() + "/configs/tiny.yaml ";
  expect_user_error(
      run(tiny + "--set parallel.ulysses=3"),
      {"parallel.ulysses = 3 does not divide model.num_attention_heads = 4", "divisor of the query heads"});
  expect_user_error(run(tiny + "--set model.hidden_size=96 --set model.num_attention_heads=6 "
                               "--set model.num_key_value_heads=2 --set parallel.ulysses=3"),
                    {"parallel.ulysses = 3 and model.num_key_value_heads = 2", "divide the K/V heads"});
  expect_user_error(run(tiny + "--set parallel.ulysses=0"), {"parallel.ulysses is 0", "at least 1"});
  Outcome o = mpirun(
      2, tiny + "--set parallel.cp=2 --set parallel.ulysses=2 --set log.dir=" + (temp_dir() / "u_mismatch").string());
  EXPECT_EQ(o.code, 2) << o.output;
  EXPECT_NE(o.output.find("parallel.cp * parallel.dp * parallel.ulysses = 2 * 1 * 2 = 4 but the job has 2 ranks"),
            std::string::npos)
      << o.output;
}

// step -> loss of a run directory's metrics.jsonl.
std::map<int64_t, double> losses_of(const fs::path& dir) {
  std::map<int64_t, double> out;
  std::ifstream in(dir / "metrics.jsonl");
  for (std::string line; std::getline(in, line);) {
    const auto field = [&](const std::string& key) {
      return std::stod(line.substr(line.find("\"" + key + "\":") + key.size() + 3));
    };
    out[static_cast<int64_t>(field("step"))] = field("loss");
  }
  return out;
}

// A length that 2*cp does not divide (67 on cp 3: padded to 72) trains, says its padding, and gives one rank's losses
// at 67: the padding is last, so no real token attends to it, and it carries no label.
TEST(Cli, SequenceNotDivisibleByTwiceCpIsPadded) {
  const std::string args = "train --config " + rt_test::source_dir() +
                           "/configs/tiny.yaml --set train.seq_len=67 --set train.steps=3 --set log.every=1 "
                           "--set checkpoint.every=0 --set log.dir=";
  ASSERT_EQ(run(args + (temp_dir() / "pad1").string()).code, 0);
  Outcome o = mpirun(3, args + (temp_dir() / "pad3").string() + " --set parallel.cp=3");
  ASSERT_EQ(o.code, 0) << o.output;
  EXPECT_NE(o.output.find("padding | seq_len 67 padded to 72, a multiple of 2*cp = 6: 6.94% of the tokens"),
            std::string::npos)
      << o.output;
  auto one = losses_of(temp_dir() / "pad1"), three = losses_of(temp_dir() / "pad3");
  ASSERT_EQ(three.size(), 3u);
  for (const auto& [step, loss] : three) EXPECT_NEAR(loss, one[step], 1e-5 * one[step]) << "step " << step;
}

// data.train_on=long_range trains on the answers alone: every logged loss is the long-range loss, on one rank and
// through the ring (cp = 2) alike, while the default (all) averages in the copy task's unpredictable first half.
TEST(Cli, TrainOnLongRangeLabelsOnly) {
  const std::string args = "train --config " + rt_test::source_dir() +
                           "/configs/tiny.yaml --set train.steps=3 --set log.every=1 --set checkpoint.every=0 "
                           "--set log.tensorboard=false --set log.dir=";
  auto metrics_of = [](const fs::path& dir) {
    std::vector<nlohmann::json> out;
    std::ifstream in(dir / "metrics.jsonl");
    for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
    return out;
  };
  ASSERT_EQ(run(args + (temp_dir() / "answers_all").string()).code, 0);
  Outcome one = run(args + (temp_dir() / "answers1").string() + " --set data.train_on=long_range");
  ASSERT_EQ(one.code, 0) << one.output;
  Outcome two =
      mpirun(2, args + (temp_dir() / "answers2").string() + " --set data.train_on=long_range --set parallel.cp=2");
  ASSERT_EQ(two.code, 0) << two.output;
  const auto all = metrics_of(temp_dir() / "answers_all"), answers = metrics_of(temp_dir() / "answers1");
  const auto ring = metrics_of(temp_dir() / "answers2");
  ASSERT_EQ(all.size(), 3u);
  ASSERT_EQ(answers.size(), 3u);
  ASSERT_EQ(ring.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    const double loss = answers[i]["loss"].get<double>(), long_range = answers[i]["long_range_loss"].get<double>();
    EXPECT_NEAR(loss, long_range, 1e-6 * long_range) << "step " << i + 1;
    EXPECT_NEAR(ring[i]["loss"].get<double>(), loss, 1e-5 * loss) << "step " << i + 1;
  }
  // The first step's weights and batch are the same in both runs; only which labels count differs: the same
  // long-range loss, but the default's loss and gradient take in the other labels too.
  const double long_range = answers[0]["long_range_loss"].get<double>();
  EXPECT_NEAR(all[0]["long_range_loss"].get<double>(), long_range, 1e-9 * long_range);
  EXPECT_GT(std::abs(all[0]["loss"].get<double>() - long_range), 1e-5 * long_range);
  EXPECT_GT(std::abs(all[0]["grad_norm"].get<double>() - answers[0]["grad_norm"].get<double>()),
            0.005 * answers[0]["grad_norm"].get<double>());
}

// Packed documents: three text files (a list), each one document, in sequences of 67 tokens with data.document_mask
// and data.reset_positions; the ring (cp = 2, 67 padded to 68) gives the one-rank losses and logs the skipped share.
// document_mask or reset_positions without document boundaries, and a data.path list that does not parse: exit 2.
TEST(Cli, PackedDocumentsTrainThroughTheRing) {
  std::string list;
  for (int f = 0; f < 3; ++f) {
    const fs::path file = temp_dir() / ("doc" + std::to_string(f) + ".txt");
    std::ofstream out(file);
    for (int line = 0; line < 20 + 15 * f; ++line) out << "document " << f << " line " << line << "\n";
    list += (f ? "," : "") + file.string();
  }
  const std::string args = "train --config " + rt_test::source_dir() +
                           "/configs/tiny.yaml --set data.task=text --set data.path=[" + list +
                           "] --set data.document_mask=true --set data.reset_positions=true --set train.seq_len=67 "
                           "--set train.steps=3 --set log.every=1 --set checkpoint.every=0 --set log.dir=";
  Outcome one_rank = run(args + (temp_dir() / "docs1").string());
  ASSERT_EQ(one_rank.code, 0) << one_rank.output;
  EXPECT_NE(one_rank.output.find("3 documents"), std::string::npos) << one_rank.output;
  EXPECT_NE(one_rank.output.find("| docs skip "), std::string::npos) << one_rank.output;
  Outcome o = mpirun(2, args + (temp_dir() / "docs2").string() + " --set parallel.cp=2");
  ASSERT_EQ(o.code, 0) << o.output;
  EXPECT_NE(o.output.find("(ring blocks "), std::string::npos) << o.output;
  auto one = losses_of(temp_dir() / "docs1"), two = losses_of(temp_dir() / "docs2");
  ASSERT_EQ(two.size(), 3u);
  for (const auto& [step, loss] : two) EXPECT_NEAR(loss, one[step], 1e-5 * one[step]) << "step " << step;

  expect_user_error(run("train --config " + rt_test::source_dir() +
                        "/configs/tiny.yaml --set data.document_mask=true --set train.steps=1"),
                    {"data.document_mask needs document boundaries", "copy", "data.eot"});
  expect_user_error(run("train --config " + rt_test::source_dir() +
                        "/configs/tiny.yaml --set data.task=text --set data.path=[a,{b --set train.steps=1"),
                    {"data.path list '[a,{b' does not parse"});
}

// eval: a checkpoint's held-out loss with its own config, the same on one rank and through the ring (cp = 2), written
// as JSON with a PNG plot; sample: greedy generation is deterministic and as long as asked; bad input exits 2.
TEST(Cli, EvalAndSampleFromACheckpoint) {
  const fs::path run_dir = temp_dir() / "evalrun";
  Outcome t = run("train --config " + rt_test::source_dir() +
                  "/configs/tiny.yaml --set train.steps=20 --set log.every=20 --set log.dir=" + run_dir.string());
  ASSERT_EQ(t.code, 0) << t.output;
  const std::string ckpt = (run_dir / "checkpoints").string();
  auto loss_in = [](const fs::path& json) {
    std::ifstream in(json);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return std::stod(text.substr(text.find("\"loss\": ") + 8));
  };
  Outcome one = run("eval --checkpoint " + ckpt + " --sequences 6 --out " + (temp_dir() / "e1.json").string());
  ASSERT_EQ(one.code, 0) << one.output;
  EXPECT_NE(one.output.find("eval | "), std::string::npos) << one.output;
  Outcome two = mpirun(
      2, "eval --checkpoint " + ckpt + " --sequences 6 --set parallel.cp=2 --out " + (temp_dir() / "e2.json").string());
  ASSERT_EQ(two.code, 0) << two.output;
  EXPECT_NEAR(loss_in(temp_dir() / "e2.json"), loss_in(temp_dir() / "e1.json"), 1e-5);
  Outcome ulysses = mpirun(2, "eval --checkpoint " + ckpt + " --sequences 6 --set parallel.ulysses=2 --out " +
                                  (temp_dir() / "eu.json").string());
  ASSERT_EQ(ulysses.code, 0) << ulysses.output;
  EXPECT_NEAR(loss_in(temp_dir() / "eu.json"), loss_in(temp_dir() / "e1.json"), 1e-5) << "eval through Ulysses";
  std::ifstream png(temp_dir() / "e1.png", std::ios::binary);
  char magic[8] = {};
  png.read(magic, 8);
  EXPECT_EQ(std::string(magic + 1, 3), "PNG") << "eval writes its plot beside the JSON";

  const std::string sample = "sample --checkpoint " + ckpt + " --temperature 0 --max-new-tokens 12 --ids ";
  Outcome a = run(sample + "--prompt-ids 3,1,4,1,5"), b = run(sample + "--prompt-ids 3,1,4,1,5");
  ASSERT_EQ(a.code, 0) << a.output;
  const auto first_line = [](const std::string& text) { return text.substr(0, text.find('\n')); };
  EXPECT_EQ(first_line(a.output), first_line(b.output)) << "greedy decoding is deterministic";
  EXPECT_NE(a.output.find("sample | prefill 5 tokens"), std::string::npos) << a.output;
  size_t ids = 0;
  for (std::stringstream in(a.output); in >> std::ws && !in.eof();) {
    int id = -1;
    in >> id;
    if (in.fail()) break;
    ++ids;
  }
  EXPECT_EQ(ids, 12u) << a.output;

  const fs::path empty = temp_dir() / "empty.txt";
  std::ofstream(empty).close();
  expect_user_error(run("eval --checkpoint " + (temp_dir() / "nowhere").string()),
                    {"--checkpoint", "no such checkpoint or directory of checkpoints"});
  expect_user_error(run(sample + "--prompt-ids 3,999"), {"prompt token 1 is 999", "vocabulary 0..255"});
  expect_user_error(run(sample + "--prompt-file " + empty.string()), {"--prompt-file", "is empty"});
  expect_user_error(run(sample + "--prompt-ids 1,2 --context 10"), {"asks for 14", "context of 10 tokens"});
  expect_user_error(run(sample + "--prompt-ids 1,x"), {"'x' is not a token id"});
  expect_user_error(run(sample + "--prompt-ids 1,2 --set parallel.ulysses=2"),
                    {"not over Ulysses groups", "parallel.ulysses=1"});
}

// The copy task's prompt "> span |" as --prompt-ids (33 tokens), for a model trained on configs/tiny.yaml.
const std::string kCopySpan = "Gq7/tR2xZb9+LmW0aKc4YpE1sN8dVh3";
std::string copy_prompt_ids() {
  std::ostringstream prompt;
  prompt << int{'>'};
  for (char ch : kCopySpan) prompt << ',' << int{ch};
  prompt << ',' << int{'|'};
  return prompt.str();
}

// The token ids `sample --ids` printed; mpirun may interleave its stderr line ("sample | ...") anywhere.
std::vector<int> sampled_ids(std::string text) {
  const size_t line = text.find("sample | ");
  if (line != std::string::npos) text.erase(line, text.find('\n', line) - line);
  std::vector<int> out;
  std::istringstream in(text);
  for (int id; in >> id;) out.push_back(id);
  return out;
}

// eval --task: a grid of lengths x depths as JSON and a heatmap, the same through the ring; sample over cp ranks (the
// prompt prefilled through the ring, each decode step merged across the ranks' KV shards) decodes what one rank does.
TEST(Cli, RetrievalGridAndSamplingThroughTheRing) {
  // The tiny job learns the copy task: its greedy continuation of "> span |" is the span, a varied sequence.
  const fs::path run_dir = temp_dir() / "copyrun";
  Outcome t = run("train --config " + rt_test::source_dir() +
                  "/configs/tiny.yaml --set train.steps=200 --set log.every=200 --set log.dir=" + run_dir.string());
  ASSERT_EQ(t.code, 0) << t.output;
  const std::string ckpt = (run_dir / "checkpoints").string();
  const std::string grid = "eval --checkpoint " + ckpt +
                           " --task recall --lengths 64,128,200 --depths 0,0.5,1 "
                           "--sequences 4 --out ";
  Outcome one = run(grid + (temp_dir() / "r1.json").string());
  ASSERT_EQ(one.code, 0) << one.output;
  EXPECT_NE(one.output.find("eval recall | context 200 | exact match by depth 0:"), std::string::npos) << one.output;
  Outcome two = mpirun(2, grid + (temp_dir() / "r2.json").string() + " --set parallel.cp=2");
  ASSERT_EQ(two.code, 0) << two.output;
  auto cells = [](const fs::path& json) {
    std::ifstream in(json);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<std::pair<double, double>> out;  // (exact_match, answer_loss) per cell
    for (size_t at = text.find("\"exact_match\": "); at != std::string::npos;
         at = text.find("\"exact_match\": ", at + 1)) {
      const size_t loss = text.find("\"answer_loss\": ", at);
      out.emplace_back(std::stod(text.substr(at + 15)), std::stod(text.substr(loss + 15)));
    }
    return out;
  };
  const auto c1 = cells(temp_dir() / "r1.json"), c2 = cells(temp_dir() / "r2.json");
  ASSERT_EQ(c1.size(), 9u) << "3 lengths x 3 depths";
  ASSERT_EQ(c2.size(), 9u);
  for (size_t i = 0; i < c1.size(); ++i) {
    EXPECT_GE(c1[i].first, 0.0);
    EXPECT_LE(c1[i].first, 1.0);
    EXPECT_NEAR(c2[i].second, c1[i].second, 1e-4) << "cell " << i << ": the ring computes the same answer loss";
  }
  std::ifstream png(temp_dir() / "r1.png", std::ios::binary);
  char magic[8] = {};
  png.read(magic, 8);
  EXPECT_EQ(std::string(magic + 1, 3), "PNG") << "the heatmap beside the JSON";

  // "> span |", 33 tokens: on 2 ranks padded to 36, on 3 ranks to 36 (rank 0's second chunk holds the padding).
  const std::string sample =
      "sample --checkpoint " + ckpt + " --temperature 0 --max-new-tokens 31 --ids --prompt-ids " + copy_prompt_ids();
  Outcome a = run(sample), b = mpirun(2, sample + " --set parallel.cp=2"),
          c = mpirun(3, sample + " --set parallel.cp=3");
  ASSERT_EQ(a.code, 0) << a.output;
  ASSERT_EQ(b.code, 0) << b.output;
  ASSERT_EQ(c.code, 0) << c.output;
  const std::vector<int> single = sampled_ids(a.output);
  ASSERT_EQ(single.size(), 31u) << a.output;
  int copied = 0;
  for (size_t i = 0; i < kCopySpan.size(); ++i) copied += single[i] == kCopySpan[i];
  EXPECT_GE(copied, 16) << "the trained model copies the span: " << a.output;
  EXPECT_EQ(sampled_ids(b.output), single) << "greedy decoding over 2 ranks equals one rank's: " << b.output;
  EXPECT_EQ(sampled_ids(c.output), single) << "greedy decoding over 3 ranks equals one rank's: " << c.output;
  EXPECT_NE(b.output.find("2 rank(s)"), std::string::npos) << b.output;

  expect_user_error(run(grid + "x.json --depths 1.5"), {"--depths: 1.5 lies outside [0, 1]"});
  expect_user_error(run("eval --checkpoint " + ckpt + " --task passkey --lengths 100"),
                    {"--lengths: 100 is too short for --task passkey", ">= 250"});
  expect_user_error(run("eval --checkpoint " + ckpt + " --task nope"), {"unknown --task 'nope'", "recall, passkey"});
  expect_user_error(run("eval --checkpoint " + ckpt + " --lengths 64"), {"--lengths and --depths", "--task"});
}

// A run writes TensorBoard events (log.tensorboard, on by default) holding the logged metrics and, with
// train.eval_every, the held-out loss; `ringtrain plot` draws its curves; log.tensorboard=false writes none.
TEST(Cli, TensorBoardEventsEvalEveryAndPlot) {
  const fs::path dir = temp_dir() / "tb";
  Outcome o = run("train --config " + rt_test::source_dir() +
                  "/configs/tiny.yaml --set train.steps=6 --set log.every=2 --set train.eval_every=3 "
                  "--set checkpoint.every=0 --set log.dir=" +
                  dir.string());
  ASSERT_EQ(o.code, 0) << o.output;
  EXPECT_NE(o.output.find("eval step 6 | 8 held-out sequences | loss "), std::string::npos) << o.output;
  std::vector<fs::path> events;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().rfind("events.out.tfevents.", 0) == 0) events.push_back(e.path());
  ASSERT_EQ(events.size(), 1u);
  std::map<std::string, std::vector<int64_t>> steps;
  for (const rt::TensorBoardScalar& s : rt::tensorboard_read(events[0].string())) steps[s.tag].push_back(s.step);
  EXPECT_EQ(steps["train/loss"], (std::vector<int64_t>{2, 4, 6}));
  EXPECT_EQ(steps["eval/loss"], (std::vector<int64_t>{3, 6}));
  EXPECT_EQ(steps["train/lr"].size(), 3u);
  Outcome p = run("plot " + dir.string());
  ASSERT_EQ(p.code, 0) << p.output;
  EXPECT_TRUE(fs::file_size(dir / "curves.png") > 1000);
  expect_user_error(run("plot " + (temp_dir() / "no_run").string()), {"metrics.jsonl", "give a run directory"});
  const fs::path quiet = temp_dir() / "tb_off";
  ASSERT_EQ(run("train --config " + rt_test::source_dir() +
                "/configs/tiny.yaml --set train.steps=2 --set log.tensorboard=false --set checkpoint.every=0 "
                "--set log.dir=" +
                quiet.string())
                .code,
            0);
  for (const auto& e : fs::directory_iterator(quiet))
    EXPECT_NE(e.path().filename().string().rfind("events.out", 0), 0u) << e.path();
}

// Two ranks share one sequence (cp = 2): only rank 0 logs, and the run trains.
TEST(Cli, TrainsWithContextParallelismUnderMpirun) {
  fs::path dir = temp_dir() / "cp2";
  Outcome o = mpirun(
      2,
      "train --config " + rt_test::source_dir() +
          "/configs/tiny.yaml --set parallel.cp=2 --set train.steps=4 --set log.every=1 --set log.dir=" + dir.string());
  ASSERT_EQ(o.code, 0) << o.output;
  size_t lines = 0;
  for (size_t at = o.output.find("\nstep "); at != std::string::npos; at = o.output.find("\nstep ", at + 1)) ++lines;
  EXPECT_EQ(lines, 4u) << "only rank 0 prints its 4 step lines: " << o.output;
  EXPECT_NE(o.output.find("2 ranks"), std::string::npos) << o.output;
}

// train.device=cuda: where no GPU can be used (no GPU visible, or a build without CUDA), exit 2 with the reason
// before any work; where one can, a short run on the GPU trains (its loss falls).
TEST(Cli, DeviceCudaTrainsOrSaysWhyNot) {
  expect_user_error(run("train --set train.device=tpu"), {"train.device 'tpu'", "cpu, cuda"});
  const std::string why = rt::device_unavailable_reason(rt::Device::cuda);
  fs::path dir = temp_dir() / "cuda";
  Outcome o = run("train --config " + rt_test::source_dir() +
                  "/configs/tiny.yaml --set train.device=cuda --set train.steps=40 --set log.every=1 --set log.dir=" +
                  dir.string());
  if (!why.empty()) {
    expect_user_error(o, {"train.device is cuda but " + why, "use train.device=cpu"});
    return;
  }
  ASSERT_EQ(o.code, 0) << o.output;
  const size_t first = o.output.find("step 1/40 | loss "), last = o.output.find("step 40/40 | loss ");
  ASSERT_NE(first, std::string::npos) << o.output;
  ASSERT_NE(last, std::string::npos) << o.output;
  // On the CPU the loss falls from ~5.6 (log 256) to ~4.2 (log 64: the symbols' alphabet) in these 40 steps.
  EXPECT_LT(std::stod(o.output.substr(last + 18)), std::stod(o.output.substr(first + 17)) - 1.0) << o.output;
}

// train.device=cuda with parallel.cp=2 under mpirun: a GPU per rank and ring attention over NCCL inside the model; the
// loss falls and the final checkpoint (saved from GPU tensors) verifies. Skips where fewer than two GPUs are visible.
TEST(Cli, DeviceCudaWithContextParallelismUnderMpirun) {
  const std::string why = rt::device_unavailable_reason(rt::Device::cuda);
  if (!why.empty()) GTEST_SKIP() << why;
  if (rt::device_count(rt::Device::cuda) < 2) GTEST_SKIP() << "one GPU is visible; this test needs two";
  fs::path dir = temp_dir() / "cuda_cp2";
  Outcome o = mpirun(2, "train --config " + rt_test::source_dir() +
                            "/configs/tiny.yaml --set train.device=cuda --set parallel.cp=2 --set train.steps=40 "
                            "--set log.every=1 --set log.dir=" +
                            dir.string());
  ASSERT_EQ(o.code, 0) << o.output;
  const size_t first = o.output.find("step 1/40 | loss "), last = o.output.find("step 40/40 | loss ");
  ASSERT_NE(first, std::string::npos) << o.output;
  ASSERT_NE(last, std::string::npos) << o.output;
  EXPECT_LT(std::stod(o.output.substr(last + 18)), std::stod(o.output.substr(first + 17)) - 1.0) << o.output;
  const Outcome inspect = run("inspect " + (dir / "checkpoints").string());
  EXPECT_EQ(inspect.code, 0) << inspect.output;
}

// sample with train.device=cuda on 2 ranks (parallel.cp=2): the prompt prefilled by the ring over NCCL, each decode
// step merged across the ranks' device KV shards; greedy tokens equal one GPU's, and the copy-trained model copies.
TEST(Cli, DeviceCudaSamplesThroughTheRing) {
  const std::string why = rt::device_unavailable_reason(rt::Device::cuda);
  if (!why.empty()) GTEST_SKIP() << why;
  if (rt::device_count(rt::Device::cuda) < 2) GTEST_SKIP() << "one GPU is visible; this test needs two";
  const fs::path dir = temp_dir() / "cuda_sample";
  Outcome t = run("train --config " + rt_test::source_dir() +
                  "/configs/tiny.yaml --set train.steps=200 --set log.every=200 --set log.dir=" + dir.string());
  ASSERT_EQ(t.code, 0) << t.output;
  const std::string sample = "sample --checkpoint " + (dir / "checkpoints").string() +
                             " --temperature 0 --max-new-tokens 31 --ids --set train.device=cuda --prompt-ids " +
                             copy_prompt_ids();
  Outcome one = run(sample), two = mpirun(2, sample + " --set parallel.cp=2");
  ASSERT_EQ(one.code, 0) << one.output;
  ASSERT_EQ(two.code, 0) << two.output;
  const std::vector<int> single = sampled_ids(one.output);
  ASSERT_EQ(single.size(), 31u) << one.output;
  int copied = 0;
  for (size_t i = 0; i < kCopySpan.size(); ++i) copied += single[i] == kCopySpan[i];
  EXPECT_GE(copied, 16) << one.output;
  EXPECT_EQ(sampled_ids(two.output), single) << two.output;
}

}  // namespace
