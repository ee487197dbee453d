// Tests for data/: tokenizer, copy and recall layouts, text/shard windows, and user-facing error messages.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <set>
#include <string>
#include <vector>

#include "core/check.h"
#include "data/dataset.h"
#include "data/rng.h"
#include "data/shard.h"
#include "data/tokenizer.h"

namespace rt {
namespace {

namespace fs = std::filesystem;

// Runs fn, expects rt::UserError whose message contains every fragment.
void expect_user_error(const std::function<void()>& fn, std::initializer_list<std::string> fragments) {
  try {
    fn();
    ADD_FAILURE() << "expected rt::UserError";
  } catch (const UserError& e) {
    const std::string what = e.what();
    for (const std::string& fragment : fragments) {
      EXPECT_NE(what.find(fragment), std::string::npos) << "message: " << what << "\nmissing: " << fragment;
    }
  }
}

// Labels are next tokens wherever both are defined; sizes are S; tokens are bytes.
void expect_well_formed(const Sequence& seq, int64_t seq_len) {
  ASSERT_EQ(static_cast<int64_t>(seq.tokens.size()), seq_len);
  ASSERT_EQ(static_cast<int64_t>(seq.labels.size()), seq_len);
  ASSERT_EQ(static_cast<int64_t>(seq.long_range.size()), seq_len);
  for (int64_t t = 0; t < seq_len; ++t) {
    EXPECT_GE(seq.tokens[t], 0);
    EXPECT_LT(seq.tokens[t], 256);
    EXPECT_GE(seq.labels[t], -1);
    if (t + 1 < seq_len && seq.labels[t] != -1) {
      EXPECT_EQ(seq.labels[t], seq.tokens[t + 1]) << "t=" << t;
    }
    if (seq.long_range[t]) {
      EXPECT_NE(seq.labels[t], -1) << "flagged label not trained at t=" << t;
    }
  }
  EXPECT_EQ(seq.labels[seq_len - 1], -1);
}

class TempDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("ringtrain_data_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  void write_bytes(const std::string& name, const std::string& bytes) const {
    std::ofstream out(path(name), std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  // A raw shard: header ints (magic, version, count) then the given tokens, little-endian.
  void write_raw_shard(const std::string& name, int32_t magic, int32_t version, int32_t count,
                       const std::vector<uint16_t>& tokens) const {
    std::string bytes(1024, '\0');
    const int32_t header[3] = {magic, version, count};
    for (int h = 0; h < 3; ++h)
      for (int b = 0; b < 4; ++b) bytes[4 * h + b] = static_cast<char>(static_cast<uint32_t>(header[h]) >> (8 * b));
    for (uint16_t t : tokens) {
      bytes.push_back(static_cast<char>(t & 0xff));
      bytes.push_back(static_cast<char>(t >> 8));
    }
    write_bytes(name, bytes);
  }
  fs::path dir_;
};

// ---------------------------------------------------------------- tokenizer

TEST(Tokenizer, RoundTripsEveryByte) {
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  all += "h\xC3\xA9llo, w\xF0\x9F\x8C\x8Drld\n";
  const std::vector<int32_t> tokens = tokenizer_encode(all);
  ASSERT_EQ(tokens.size(), all.size());
  for (int b = 0; b < 256; ++b) EXPECT_EQ(tokens[b], b);
  EXPECT_EQ(tokenizer_decode(tokens), all);
  EXPECT_TRUE(tokenizer_encode("").empty());
}

TEST(Tokenizer, OutOfRangeDecodesToReplacementCharacter) {
  EXPECT_EQ(tokenizer_decode({'a', 300, -1, 'b'}), "a\xEF\xBF\xBD\xEF\xBF\xBD" "b");
}

// ---------------------------------------------------------------- permutation

TEST(Permutation, IsABijectionForManySizes) {
  for (uint64_t n : {1ULL, 2ULL, 3ULL, 5ULL, 16ULL, 17ULL, 100ULL, 1000ULL, 4099ULL}) {
    std::vector<bool> seen(n, false);
    for (uint64_t j = 0; j < n; ++j) {
      const uint64_t p = data_detail::permute_index(j, n, 42);
      ASSERT_LT(p, n);
      EXPECT_FALSE(seen[p]) << "n=" << n << " j=" << j;
      seen[p] = true;
    }
  }
  // Different keys give different orders.
  int same = 0;
  for (uint64_t j = 0; j < 1000; ++j) same += data_detail::permute_index(j, 1000, 1) == data_detail::permute_index(j, 1000, 2);
  EXPECT_LT(same, 20);
}

// ---------------------------------------------------------------- copy

void expect_copy_layout(const Sequence& seq, int64_t S) {
  expect_well_formed(seq, S);
  const int64_t L = (S - 2) / 2;
  EXPECT_EQ(seq.tokens[0], '>');
  EXPECT_EQ(seq.tokens[L + 1], '|');
  for (int64_t k = 0; k < L; ++k) {
    EXPECT_EQ(seq.tokens[L + 2 + k], seq.tokens[1 + k]) << "k=" << k;
    EXPECT_TRUE(std::isalnum(seq.tokens[1 + k]) || seq.tokens[1 + k] == '+' || seq.tokens[1 + k] == '/');
  }
  for (int64_t t = 0; t < S; ++t) {
    const bool in_second_copy = t >= L + 1 && t <= 2 * L;
    EXPECT_EQ(seq.long_range[t], in_second_copy ? 1 : 0) << "t=" << t;
    if (in_second_copy) {
      EXPECT_EQ(seq.labels[t], seq.tokens[1 + (t - (L + 1))]);
    }
    if (t <= 2 * L) {
      EXPECT_EQ(seq.labels[t], seq.tokens[t + 1]);
    } else {
      EXPECT_EQ(seq.labels[t], -1);
    }
  }
  if (S % 2 == 1) {
    EXPECT_EQ(seq.tokens[S - 1], '.');
  }
}

TEST(Copy, LayoutFlagsAndLabels) {
  for (int64_t S : {4, 5, 6, 7, 16, 17, 127, 128, 1001, 4096}) {
    auto data = dataset_make("copy", "", S, 256, 7);
    EXPECT_TRUE(data->has_long_range());
    EXPECT_FALSE(data->describe().empty());
    for (int64_t i : {0, 1, 2, 99, 123456789}) {
      SCOPED_TRACE("S=" + std::to_string(S) + " i=" + std::to_string(i));
      expect_copy_layout(data->get(i), S);
    }
  }
}

TEST(Copy, DeterministicAndVaried) {
  auto a = dataset_make("copy", "", 64, 256, 7);
  auto b = dataset_make("copy", "", 64, 512, 7);
  auto c = dataset_make("copy", "", 64, 256, 8);
  EXPECT_EQ(a->get(5).tokens, b->get(5).tokens);
  EXPECT_EQ(a->get(5).labels, a->get(5).labels);
  EXPECT_NE(a->get(5).tokens, a->get(6).tokens);
  EXPECT_NE(a->get(5).tokens, c->get(5).tokens);
  // The symbols use the whole 64-symbol alphabet.
  std::set<int32_t> symbols;
  for (int64_t i = 0; i < 20; ++i)
    for (int32_t t : a->get(i).tokens) symbols.insert(t);
  EXPECT_EQ(symbols.size(), 64u + 2u);  // + '>' and '|' (S even: no padding)
}

TEST(Copy, RejectsSmallSeqLenAndVocab) {
  expect_user_error([] { dataset_make("copy", "", 3, 256, 1); }, {"data.task=copy", "train.seq_len >= 4", "got 3"});
  expect_user_error([] { dataset_make("copy", "", 64, 100, 1); }, {"model.vocab_size must be >= 256", "got 100"});
}

// ---------------------------------------------------------------- recall

void expect_recall_layout(const Sequence& seq, int64_t S) {
  expect_well_formed(seq, S);
  const int64_t Q = S / 12, C = S - 3 * Q;
  EXPECT_EQ(seq.tokens[0], '>');
  // Context: pairs (letter, digit) and fillers only; keys distinct.
  std::vector<int> value_of(256, -1);
  int64_t pairs = 0;
  for (int64_t t = 1; t < C; ++t) {
    const int32_t tok = seq.tokens[t];
    if (tok == '.') continue;
    ASSERT_TRUE(std::isalpha(tok)) << "t=" << t << " tok=" << tok;
    ASSERT_LT(t + 1, C);
    ASSERT_TRUE(std::isdigit(seq.tokens[t + 1]));
    EXPECT_EQ(value_of[tok], -1) << "key " << char(tok) << " repeated";
    value_of[tok] = seq.tokens[t + 1];
    EXPECT_EQ(seq.long_range[t], 0);
    ++pairs;
    ++t;
  }
  EXPECT_EQ(pairs, std::min<int64_t>(52, (C - 1) / 4));
  // Queries: "? k v", flagged exactly at k, label = the value paired with k in the context.
  int64_t flagged = 0, previous_key = -1;
  for (int64_t t = 0; t < S; ++t) {
    if (t < C) {
      EXPECT_EQ(seq.long_range[t], 0);
      if (t + 1 < S && seq.tokens[t] == '.' && seq.tokens[t + 1] == '.') {
        EXPECT_EQ(seq.labels[t], -1);
      } else if (t + 1 < S) {
        EXPECT_EQ(seq.labels[t], seq.tokens[t + 1]);
      }
      continue;
    }
    const int64_t phase = (t - C) % 3;
    if (phase == 0) {
      EXPECT_EQ(seq.tokens[t], '?');
    }
    if (phase == 1) {
      EXPECT_EQ(seq.long_range[t], 1);
      const int32_t key = seq.tokens[t];
      EXPECT_NE(key, previous_key);
      previous_key = key;
      ASSERT_NE(value_of[key], -1) << "queried key " << char(key) << " not in the context";
      EXPECT_EQ(seq.labels[t], value_of[key]);
      ++flagged;
    } else {
      EXPECT_EQ(seq.long_range[t], 0);
    }
  }
  EXPECT_EQ(flagged, Q);
}

TEST(Recall, LayoutFlagsAndLabels) {
  for (int64_t S : {16, 17, 23, 24, 100, 275, 1000, 4097, 65536, 70001}) {
    auto data = dataset_make("recall", "", S, 256, 11);
    EXPECT_TRUE(data->has_long_range());
    for (int64_t i : {0, 1, 77}) {
      SCOPED_TRACE("S=" + std::to_string(S) + " i=" + std::to_string(i));
      expect_recall_layout(data->get(i), S);
    }
  }
}

TEST(Recall, LongRangeLabelsAreFarBack) {
  // At large S the pairs are scattered over the first 3/4: the mean distance from a queried key back to
  // its pair in the context is thousands of tokens.
  auto data = dataset_make("recall", "", 65536, 256, 3);
  const Sequence seq = data->get(0);
  double total = 0;
  int64_t count = 0;
  for (int64_t t = 0; t < 65536; ++t) {
    if (!seq.long_range[t]) continue;
    const auto first = std::find(seq.tokens.begin(), seq.tokens.end(), seq.tokens[t]);
    total += static_cast<double>(t - (first - seq.tokens.begin()));
    ++count;
  }
  ASSERT_GT(count, 0);
  EXPECT_GT(total / static_cast<double>(count), 10000.0);
}

TEST(Recall, DeterministicAndVaried) {
  auto a = dataset_make("recall", "", 300, 256, 7);
  auto b = dataset_make("recall", "", 300, 256, 7);
  auto c = dataset_make("recall", "", 300, 256, 8);
  EXPECT_EQ(a->get(3).tokens, b->get(3).tokens);
  EXPECT_EQ(a->get(3).labels, b->get(3).labels);
  EXPECT_EQ(a->get(3).long_range, b->get(3).long_range);
  EXPECT_NE(a->get(3).tokens, a->get(4).tokens);
  EXPECT_NE(a->get(3).tokens, c->get(3).tokens);
}

// data.train_on=long_range: the same tokens and flags, the labels kept exactly where flagged.
TEST(Recall, LongRangeLabelsOnlyKeepsTheAnswers) {
  auto all = dataset_make("recall", "", 200, 256, 7);
  auto answers = long_range_labels_only(dataset_make("recall", "", 200, 256, 7));
  for (int64_t i = 0; i < 5; ++i) {
    const Sequence a = all->get(i), b = answers->get(i);
    EXPECT_EQ(a.tokens, b.tokens);
    EXPECT_EQ(a.long_range, b.long_range);
    int kept = 0;
    for (size_t t = 0; t < a.labels.size(); ++t) {
      EXPECT_EQ(b.labels[t], a.long_range[t] ? a.labels[t] : -1) << "sequence " << i << ", position " << t;
      kept += b.labels[t] >= 0;
    }
    EXPECT_EQ(kept, 200 / 12) << "one answer per query";
  }
  EXPECT_NE(answers->describe().find("long-range labels only"), std::string::npos);
}

TEST(Recall, RejectsSmallSeqLenAndVocab) {
  expect_user_error([] { dataset_make("recall", "", 15, 256, 1); },
                    {"data.task=recall", "train.seq_len >= 16", "got 15"});
  expect_user_error([] { dataset_make("recall", "", 64, 255, 1); }, {"model.vocab_size must be >= 256", "got 255"});
}

// ---------------------------------------------------------------- retrieval probes

// The recall probe: the recall layout, its pair 0 placed at the depth, asked for by the last query, the only flag.
TEST(RecallProbe, PairAtDepthAskedByTheLastQuery) {
  for (int64_t S : {64, 275, 1024, 4099}) {
    const int64_t Q = S / 12, C = S - 3 * Q;
    for (double depth : {0.0, 0.25, 0.5, 0.75, 1.0}) {
      auto probes = retrieval_probe_make("recall", S, depth, 256, 5);
      for (int64_t i : {0, 1, 9}) {
        SCOPED_TRACE("S=" + std::to_string(S) + " depth=" + std::to_string(depth) + " i=" + std::to_string(i));
        const Sequence seq = probes->get(i);
        expect_well_formed(seq, S);
        const int64_t asked = S - 2;  // the last query's key, C + 3 (Q - 1) + 1
        for (int64_t t = 0; t < S; ++t) EXPECT_EQ(seq.long_range[t], t == asked ? 1 : 0) << "t=" << t;
        const auto at = std::find(seq.tokens.begin() + 1, seq.tokens.begin() + C, seq.tokens[asked]);
        ASSERT_NE(at, seq.tokens.begin() + C) << "the asked key is in the context";
        const int64_t pos = at - seq.tokens.begin();
        EXPECT_EQ(seq.labels[asked], seq.tokens[pos + 1]) << "the answer is the pair's value";
        const double want = 1 + depth * static_cast<double>(C - 3);
        EXPECT_LE(std::abs(static_cast<double>(pos) - want), 4.0) << "pair at " << pos << ", depth wants " << want;
        EXPECT_NE(seq.tokens[asked - 3], seq.tokens[asked]) << "no key asked twice in a row";
      }
    }
  }
  EXPECT_NE(retrieval_probe_make("recall", 300, 0.5, 256, 5)->get(0).tokens,
            retrieval_probe_make("recall", 300, 0.5, 256, 6)->get(0).tokens);
}

std::string text_of(const Sequence& seq) {
  std::string text;
  for (int32_t t : seq.tokens) text.push_back(static_cast<char>(t));
  return text;
}

// Passkey: instructions, filler, the needle at the depth, and the question whose last 5 tokens are the answer.
TEST(Passkey, NeedleAtDepthAnswerAtTheEnd) {
  const int64_t min = retrieval_probe_min_seq_len("passkey");
  for (int64_t S : {min, min + 1, int64_t{1000}, int64_t{4096}}) {
    for (double depth : {0.0, 0.5, 1.0}) {
      SCOPED_TRACE("S=" + std::to_string(S) + " depth=" + std::to_string(depth));
      const Sequence seq = retrieval_probe_make("passkey", S, depth, 256, 3)->get(2);
      expect_well_formed(seq, S);
      const std::string text = text_of(seq);
      EXPECT_EQ(text.rfind("There is an important info", 0), 0u);
      const std::string key = text.substr(static_cast<size_t>(S) - 5);
      ASSERT_EQ(key.find_first_not_of("0123456789"), std::string::npos) << text.substr(text.size() - 60);
      const size_t needle = text.find(" The pass key is " + key + ". Remember it. " + key + " is the pass key.");
      ASSERT_NE(needle, std::string::npos);
      const size_t question = text.rfind("\nWhat is the pass key? The pass key is ");
      ASSERT_NE(question, std::string::npos);
      const double filler = static_cast<double>(S - min), into = static_cast<double>(needle) - 147;
      if (filler > 200) {
        EXPECT_LE(std::abs(into - depth * filler), 60.0) << "needle at " << needle;
      }
      for (int64_t t = 0; t < S; ++t) EXPECT_EQ(seq.long_range[t], t >= S - 6 && t < S - 1 ? 1 : 0) << "t=" << t;
      EXPECT_EQ(seq.labels[S - 2], key[4]);
    }
  }
  // The training task: a random depth and number per sequence.
  auto train = dataset_make("passkey", "", 2000, 256, 1);
  std::set<size_t> places;
  for (int64_t i = 0; i < 8; ++i) places.insert(text_of(train->get(i)).find(" The pass key is "));
  EXPECT_GE(places.size(), 6u);
  expect_user_error([&] { dataset_make("passkey", "", min - 1, 256, 1); },
                    {"data.task=passkey", "train.seq_len >= " + std::to_string(min)});
  expect_user_error([] { retrieval_probe_make("recall", 100, 1.5, 256, 1); }, {"depth must lie in [0, 1]", "1.5"});
  expect_user_error([] { retrieval_probe_make("copy", 100, 0.5, 256, 1); }, {"valid: recall, passkey"});
}

// ---------------------------------------------------------------- text

using TextDataset = TempDir;

// Window start offsets of sequences [first, first + count), found by locating their tokens in the file.
std::vector<int64_t> window_starts(const Dataset& data, const std::string& bytes, int64_t S, int64_t first,
                                   int64_t count) {
  std::vector<int64_t> starts;
  for (int64_t i = first; i < first + count; ++i) {
    const Sequence seq = data.get(i);
    EXPECT_EQ(static_cast<int64_t>(seq.tokens.size()), S);
    std::string window;
    for (int32_t t : seq.tokens) window.push_back(static_cast<char>(t));
    const size_t at = bytes.find(window);
    EXPECT_NE(at, std::string::npos);
    EXPECT_EQ(bytes.find(window, at + 1), std::string::npos) << "ambiguous window";
    for (int64_t t = 0; t < S; ++t) {
      EXPECT_EQ(seq.labels[t], static_cast<unsigned char>(bytes[at + t + 1])) << "labels not shifted";
      EXPECT_EQ(seq.long_range[t], 0);
    }
    starts.push_back(static_cast<int64_t>(at));
  }
  return starts;
}

TEST_F(TextDataset, WindowsTileTheFileOncePerEpoch) {
  const int64_t S = 16;
  std::string bytes;
  data_detail::SplitMix64 rng(5);
  for (int k = 0; k < 37 * 16 + 9; ++k) bytes.push_back(static_cast<char>(rng.next() & 0xff));
  write_bytes("corpus.txt", bytes);
  auto data = dataset_make("text", path("corpus.txt"), S, 256, 1234);
  EXPECT_FALSE(data->has_long_range());
  const int64_t W = (static_cast<int64_t>(bytes.size()) - 1) / S;  // 37
  ASSERT_EQ(W, 37);
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    std::vector<int64_t> starts = window_starts(*data, bytes, S, epoch * W, W);
    std::vector<int64_t> sorted = starts;
    std::sort(sorted.begin(), sorted.end());
    for (int64_t w = 0; w < W; ++w) EXPECT_EQ(sorted[w], w * S) << "epoch " << epoch;
    if (epoch > 0) {
      EXPECT_NE(starts, window_starts(*data, bytes, S, 0, W)) << "same order in two epochs";
    }
  }
  // Deterministic across instances; another seed gives another order.
  auto again = dataset_make("text", path("corpus.txt"), S, 256, 1234);
  auto other = dataset_make("text", path("corpus.txt"), S, 256, 99);
  EXPECT_EQ(window_starts(*again, bytes, S, 0, W), window_starts(*data, bytes, S, 0, W));
  EXPECT_NE(window_starts(*other, bytes, S, 0, W), window_starts(*data, bytes, S, 0, W));
}

TEST_F(TextDataset, ExactlySeqLenPlusOneBytesGiveOneWindow) {
  write_bytes("tiny.txt", "abcdefghi");
  auto data = dataset_make("text", path("tiny.txt"), 8, 256, 1);
  for (int64_t i : {0, 1, 5}) {
    const Sequence seq = data->get(i);
    EXPECT_EQ(tokenizer_decode(seq.tokens), "abcdefgh");
    EXPECT_EQ(tokenizer_decode(seq.labels), "bcdefghi");
  }
}

TEST_F(TextDataset, Errors) {
  expect_user_error([] { dataset_make("text", "", 16, 256, 1); },
                    {"data.path is required for data.task=text; give a text file"});
  const std::string missing = path("nope.txt");
  expect_user_error([&] { dataset_make("text", missing, 16, 256, 1); },
                    {"'" + missing + "'", "No such file or directory"});
  expect_user_error([&] { dataset_make("text", dir_.string(), 16, 256, 1); }, {"holds no files"});
  write_bytes("short.txt", "0123456789");
  expect_user_error([&] { dataset_make("text", path("short.txt"), 16, 256, 1); },
                    {"short.txt", "has 10 tokens", "needs at least 17"});
  write_bytes("high.txt", std::string(20, 'a') + "\xC3\xA9");
  expect_user_error([&] { dataset_make("text", path("high.txt"), 16, 128, 1); },
                    {"high.txt", "byte 195 at position 20", "model.vocab_size is 128"});
}

// Documents (data.document_mask, data.reset_positions): each text file is one document, found in a directory (walked
// in sorted order, subdirectories included) or a list (in its order). Every window's doc_start names, per token, the
// window position where its document starts; a label that is the next file's first byte is not trained on (-1); with
// data.eot the token is put before each file, begins a document, and is trained on as the last label of the previous.
TEST_F(TextDataset, FilesAreDocuments) {
  std::filesystem::create_directories(dir_ / "docs" / "sub");
  data_detail::SplitMix64 rng(11);
  auto letters = [&](int n) {
    std::string text;
    for (int i = 0; i < n; ++i) text.push_back(static_cast<char>('a' + rng.next() % 26));
    return text;
  };
  const std::vector<std::pair<std::string, std::string>> files = {
      {"docs/a.txt", letters(37)}, {"docs/b.txt", letters(5)}, {"docs/sub/c.txt", letters(60)}};
  for (const auto& [name, text] : files) write_bytes(name, text);
  const int64_t S = 16;
  for (const int64_t eot : {int64_t{-1}, int64_t{256}}) {
    SCOPED_TRACE("eot " + std::to_string(eot));
    auto data = dataset_make(DatasetSpec{"text", {path("docs")}, S, 257, 3, eot});
    ASSERT_TRUE(data->has_documents());
    EXPECT_NE(data->describe().find("3 documents"), std::string::npos) << data->describe();
    std::string stream;  // what the dataset should have concatenated, eot as '#'
    std::set<int64_t> begins;  // where each file's document starts in it
    for (const auto& [name, text] : files) {
      begins.insert(static_cast<int64_t>(stream.size()));
      stream += (eot >= 0 ? "#" : "") + text;
    }
    const int64_t W = (static_cast<int64_t>(stream.size()) - 1) / S;
    std::set<int64_t> seen;
    for (int64_t i = 0; i < W; ++i) {
      const Sequence seq = data->get(i);
      ASSERT_EQ(static_cast<int64_t>(seq.doc_start.size()), S);
      std::string window;
      for (int32_t t : seq.tokens) window.push_back(t == 256 ? '#' : static_cast<char>(t));
      const size_t at = stream.find(window);
      ASSERT_NE(at, std::string::npos) << window;
      seen.insert(static_cast<int64_t>(at));
      for (int64_t t = 0; t < S; ++t) {
        // The document of token t: from the last file start at or before it, clipped to the window.
        int64_t begin = 0;
        for (int64_t g = static_cast<int64_t>(at) + t; g > static_cast<int64_t>(at); --g)
          if (begins.count(g)) {
            begin = g - static_cast<int64_t>(at);
            break;
          }
        EXPECT_EQ(seq.doc_start[t], begin) << "window at " << at << " token " << t;
        const char next = stream[at + t + 1];
        const bool crosses = begins.count(static_cast<int64_t>(at) + t + 1) > 0;
        const int32_t label = next == '#' ? 256 : static_cast<unsigned char>(next);
        EXPECT_EQ(seq.labels[t], crosses && eot < 0 ? -1 : label) << "window at " << at << " token " << t;
      }
    }
    EXPECT_EQ(static_cast<int64_t>(seen.size()), W) << "windows must tile the stream";
  }
  // A list keeps its order; a file alone is one document.
  auto listed = dataset_make(DatasetSpec{"text", {path("docs/sub/c.txt"), path("docs/a.txt")}, S, 256, 3});
  EXPECT_TRUE(listed->has_documents());
  EXPECT_NE(listed->describe().find("2 files"), std::string::npos) << listed->describe();
  EXPECT_FALSE(dataset_make("text", path("docs/sub/c.txt"), S, 256, 3)->has_documents());
  expect_user_error([&] { dataset_make(DatasetSpec{"text", {path("docs")}, S, 256, 3, 256}); },
                    {"data.eot=256 is not a token id of model.vocab_size 256", "valid: 0..255, or -1"});
  expect_user_error([&] { dataset_make(DatasetSpec{"copy", {}, S, 256, 3, 0}); },
                    {"data.eot applies to data.task text and shards, not copy"});
}

// ---------------------------------------------------------------- shards

// llm.c's shards put <|endoftext|> before every document: with data.eot, each of them begins one, across shards.
TEST_F(TempDir, ShardDocumentsBeginAtEot) {
  std::vector<uint16_t> a = {7, 1, 2, 3, 7, 4, 5}, b = {6, 7, 8, 9, 10, 11, 12, 13, 14};
  shard_write(path("s_a.bin"), a);
  shard_write(path("s_b.bin"), b);
  auto data = dataset_make(DatasetSpec{"shards", {path("s_*.bin")}, 15, 64, 1, 7});
  ASSERT_TRUE(data->has_documents());
  const Sequence seq = data->get(0);  // the one window: stream[0, 16)
  const std::vector<int32_t> want = {0, 0, 0, 0, 4, 4, 4, 4, 8, 8, 8, 8, 8, 8, 8};
  EXPECT_EQ(seq.doc_start, want);
  EXPECT_EQ(seq.labels[3], 7) << "the eot that begins the next document is trained on";
  EXPECT_FALSE(dataset_make("shards", path("s_*.bin"), 15, 64, 1)->has_documents()) << "no eot: one stream";
}


using ShardDataset = TempDir;

TEST_F(ShardDataset, WriteReadRoundTrip) {
  std::vector<uint16_t> tokens;
  for (int k = 0; k < 1000; ++k) tokens.push_back(static_cast<uint16_t>(k * 61 % 65536));
  shard_write(path("one.bin"), tokens);
  EXPECT_EQ(fs::file_size(path("one.bin")), 1024u + 2u * tokens.size());
  EXPECT_EQ(shard_read(path("one.bin"), 65536), tokens);
  shard_write(path("empty.bin"), {});
  EXPECT_TRUE(shard_read(path("empty.bin"), 256).empty());
}

TEST_F(ShardDataset, GlobConcatenatesInSortedOrderAndWindowsTile) {
  // Token value = position in the concatenated stream, so every window is identified by its first token.
  const int64_t S = 32, N = 3 * 500;
  std::vector<uint16_t> all(N);
  for (int64_t k = 0; k < N; ++k) all[k] = static_cast<uint16_t>(k);
  // Written out of order: c, a, b; sorted order a, b, c must come back.
  shard_write(path("train_c.bin"), std::vector<uint16_t>(all.begin() + 1000, all.end()));
  shard_write(path("train_a.bin"), std::vector<uint16_t>(all.begin(), all.begin() + 500));
  shard_write(path("train_b.bin"), std::vector<uint16_t>(all.begin() + 500, all.begin() + 1000));
  shard_write(path("other.bin"), {1, 2, 3});
  auto data = dataset_make("shards", path("train_*.bin"), S, 2048, 9);
  EXPECT_NE(data->describe().find("3 file(s)"), std::string::npos) << data->describe();
  const int64_t W = (N - 1) / S;
  std::set<int64_t> starts;
  for (int64_t i = 0; i < W; ++i) {
    const Sequence seq = data->get(i);
    const int64_t start = seq.tokens[0];
    EXPECT_EQ(start % S, 0);
    for (int64_t t = 0; t < S; ++t) {
      EXPECT_EQ(seq.tokens[t], start + t);
      EXPECT_EQ(seq.labels[t], start + t + 1);
    }
    starts.insert(start);
  }
  EXPECT_EQ(static_cast<int64_t>(starts.size()), W);
  // One file by name works too.
  auto single = dataset_make("shards", path("train_a.bin"), S, 2048, 9);
  EXPECT_LT(single->get(0).tokens[0], 500);
}

TEST_F(ShardDataset, Errors) {
  expect_user_error([] { dataset_make("shards", "", 16, 256, 1); }, {"data.path is required for data.task=shards"});

  write_raw_shard("magic.bin", 12345, 1, 4, {1, 2, 3, 4});
  expect_user_error([&] { shard_read(path("magic.bin"), 256); },
                    {"shard '" + path("magic.bin") + "' has magic 12345, expected 20240520 (llm.c token shard)"});

  write_raw_shard("version.bin", 20240520, 2, 4, {1, 2, 3, 4});
  expect_user_error([&] { shard_read(path("version.bin"), 256); },
                    {"version.bin", "has version 2, expected 1"});

  write_raw_shard("truncated.bin", 20240520, 1, 100, std::vector<uint16_t>(50, 7));
  expect_user_error([&] { shard_read(path("truncated.bin"), 256); },
                    {"truncated.bin", "header says 100 tokens but the file holds 50"});

  write_raw_shard("long.bin", 20240520, 1, 3, {1, 2, 3, 4});
  expect_user_error([&] { shard_read(path("long.bin"), 256); }, {"long.bin", "is longer than"});

  write_bytes("stub.bin", "abc");
  expect_user_error([&] { shard_read(path("stub.bin"), 256); }, {"stub.bin", "only 3 bytes", "1024-byte header"});

  std::vector<uint16_t> tokens(40, 5);
  tokens[7] = 300;
  shard_write(path("vocab.bin"), tokens);
  expect_user_error([&] { dataset_make("shards", path("vocab.bin"), 16, 256, 1); },
                    {"vocab.bin", "token 300 at position 7", "model.vocab_size is 256"});

  expect_user_error([&] { dataset_make("shards", path("missing.bin"), 16, 256, 1); },
                    {"missing.bin", "No such file or directory"});

  expect_user_error([&] { dataset_make("shards", path("none_*.bin"), 16, 256, 1); },
                    {"none_*.bin", "matches no files"});

  shard_write(path("small.bin"), std::vector<uint16_t>(10, 1));
  expect_user_error([&] { dataset_make("shards", path("small.bin"), 16, 256, 1); },
                    {"small.bin", "10 tokens", "needs at least 17"});

  expect_user_error([&] { shard_write(path("no_such_dir/x.bin"), {1}); }, {"no_such_dir", "No such file"});
}

// ---------------------------------------------------------------- factory

TEST(DatasetMake, UnknownTaskNamesValidTasks) {
  expect_user_error([] { dataset_make("cpoy", "", 64, 256, 1); },
                    {"unknown data.task 'cpoy'", "valid tasks: copy, recall, passkey, text, shards"});
  expect_user_error([] { dataset_make("copy", "", 0, 256, 1); }, {"train.seq_len must be >= 1"});
}

}  // namespace
}  // namespace rt
