// Task `passkey` (Landmark attention's passkey retrieval): a 5-digit number hidden in filler text, asked for at the
// end.
//
// Byte tokens, S = seq_len >= passkey_min_seq_len():
//   head      "There is an important info hidden inside a lot of irrelevant text. Find it and memorize it. I will
//             quiz you about the important information there.\n"
//   filler    R = S - |head| - |needle| - |question| bytes of " The grass is green. The sky is blue. The sun is
//             yellow. Here we go. There and back again." repeated (the last repetition cut short)
//   needle    " The pass key is NNNNN. Remember it. NNNNN is the pass key." inserted into the filler at the sentence
//             boundary nearest depth x R (depth 0: right after the head; 1: right before the question)
//   question  "\nWhat is the pass key? The pass key is NNNNN"  (the sequence's last 5 tokens are the answer)
//   NNNNN: five digits, each uniform over 0-9. depth: the probe's (eval --task passkey), or for training uniform in
//   [0, 1] per sequence. labels[t] = tokens[t+1] for t < S-1, labels[S-1] = -1; long_range = 1 at the 5 labels that
//   are the answer's digits.
#include <algorithm>
#include <cmath>
#include <string>
#include <string_view>
#include <vector>

#include "core/check.h"
#include "data/dataset_internal.h"
#include "data/rng.h"

namespace rt::data_detail {
namespace {

constexpr std::string_view kHead =
    "There is an important info hidden inside a lot of irrelevant text. Find it and memorize it. I will quiz you "
    "about the important information there.\n";
constexpr std::string_view kFiller =
    " The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";
constexpr std::string_view kNeedle = " The pass key is #####. Remember it. ##### is the pass key.";
constexpr std::string_view kQuestion = "\nWhat is the pass key? The pass key is #####";
constexpr int64_t kDigits = 5;
constexpr uint64_t kPasskeyTag = 0x706173736b6579ULL;  // "passkey"

int64_t fixed_length() { return static_cast<int64_t>(kHead.size() + kNeedle.size() + kQuestion.size()); }

// `text` with each '#' replaced by the next digit of `key` (the same digits again after the fifth).
std::string with_key(std::string_view text, const std::string& key) {
  std::string out(text);
  size_t d = 0;
  for (char& c : out)
    if (c == '#') c = key[d++ % key.size()];
  return out;
}

class PasskeyDataset final : public Dataset {
 public:
  PasskeyDataset(int64_t seq_len, uint64_t seed, double depth) : seq_len_(seq_len), seed_(seed), depth_(depth) {}

  Sequence get(int64_t index) const override {
    RT_CHECK(index >= 0, "sequence index must be >= 0, got " + std::to_string(index));
    SplitMix64 rng(seed_combine(seed_combine(seed_, kPasskeyTag), static_cast<uint64_t>(index)));
    std::string key;
    for (int64_t d = 0; d < kDigits; ++d) key.push_back(static_cast<char>('0' + rng.below(10)));
    const double depth = depth_ >= 0 ? depth_ : static_cast<double>(rng.below(1u << 20)) / double(1u << 20);

    const auto R = static_cast<size_t>(seq_len_ - fixed_length());
    std::string filler;
    while (filler.size() < R) filler += kFiller;
    filler.resize(R);
    // Sentence boundaries of the filler: its start, its end, and before each ' ' that follows a '.'.
    const double want = depth * static_cast<double>(R);
    size_t cut = 0;
    for (size_t i = 0; i <= R; ++i)
      if ((i == 0 || i == R || (filler[i] == ' ' && filler[i - 1] == '.')) &&
          std::abs(static_cast<double>(i) - want) < std::abs(static_cast<double>(cut) - want))
        cut = i;
    const std::string text = std::string(kHead) + filler.substr(0, cut) + with_key(kNeedle, key) + filler.substr(cut) +
                             with_key(kQuestion, key);
    RT_CHECK(static_cast<int64_t>(text.size()) == seq_len_, "passkey layout length");

    const auto S = static_cast<size_t>(seq_len_);
    Sequence seq;
    seq.tokens.resize(S);
    seq.labels.assign(S, -1);
    seq.long_range.assign(S, 0);
    for (size_t t = 0; t < S; ++t) seq.tokens[t] = static_cast<unsigned char>(text[t]);
    for (size_t t = 0; t + 1 < S; ++t) seq.labels[t] = seq.tokens[t + 1];
    for (size_t t = S - 1 - kDigits; t + 1 < S; ++t) seq.long_range[t] = 1;  // labels = the answer's digits
    return seq;
  }

  std::string describe() const override {
    return "passkey: seq_len " + std::to_string(seq_len_) + ", a 5-digit number in filler text " +
           (depth_ >= 0 ? "at depth " + std::to_string(depth_) : std::string("at a random depth")) +
           ", asked for at the end, seed " + std::to_string(seed_);
  }
  bool has_long_range() const override { return true; }

 private:
  int64_t seq_len_;
  uint64_t seed_;
  double depth_;
};

}  // namespace

int64_t passkey_min_seq_len() { return fixed_length(); }

std::unique_ptr<Dataset> passkey_dataset_make(int64_t seq_len, int64_t vocab_size, uint64_t seed, double depth) {
  RT_USER_CHECK(vocab_size >= 256, "data.task=passkey uses byte tokens: model.vocab_size must be >= 256 (got " +
                                       std::to_string(vocab_size) + ")");
  RT_USER_CHECK(seq_len >= passkey_min_seq_len(),
                "data.task=passkey needs train.seq_len >= " + std::to_string(passkey_min_seq_len()) + " (got " +
                    std::to_string(seq_len) + ") to fit its instructions, the pass key and the question");
  return std::make_unique<PasskeyDataset>(seq_len, seed, depth);
}

}  // namespace rt::data_detail
