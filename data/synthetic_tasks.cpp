// Tasks `copy` and `recall`: synthetic sequences whose long-range labels need attention far back.
//
// Both are pure functions of (seed, index): a splitmix64 stream seeded by seed_combine(seed, task, index);
// every draw is our own (no std:: distributions), so sequences are identical on every platform and rank.
// All tokens are printable ASCII bytes (< 128); model.vocab_size must be >= 256 (the byte vocabulary).
//
// copy, S = seq_len >= 4, L = (S - 2) / 2, padding P = S - 2 - 2L (0, or 1 when S is odd):
//   pos 0               '>'  start token
//   pos 1 .. L          span s_0 .. s_{L-1}, each uniform over the 64 symbols A-Z a-z 0-9 + /
//   pos L+1             '|'  separator
//   pos L+2 .. 2L+1     the same span again
//   pos 2L+2 (S odd)    '.'  padding
//   labels[t] = tokens[t+1] for t in [0, 2L]; -1 for t in [2L+1, S) (nothing to predict after the copy)
//   long_range[t] = 1 for t in [L+1, 2L], the labels s_0 .. s_{L-1} of the second copy (the separator's
//   label s_0 included); the first span's labels are random: trained, not flagged.
//
// recall (associative recall), S = seq_len >= 16:
//   Q  = S / 12                   queries;  query region  = last 3Q tokens (about S/4)
//   C  = S - 3Q                   context length (about 3S/4)
//   K  = min(52, (C - 1) / 4)     key-value pairs (3 at S = 16, 52 from S = 275 up)
//   F  = C - 1 - 2K               filler tokens in the context (>= 2K)
//   pos 0                         '>'  start token
//   pos 1 .. C-1                  K pairs "k v" and F '.' fillers: the keys are K distinct letters (A-Z a-z)
//                                 in random order, each value a digit 0-9 drawn independently; the fillers
//                                 are split into K+1 random gaps (before the first pair, between pairs, after
//                                 the last) by K sorted uniform cut points in [0, F]
//   pos C + 3j, j = 0 .. Q-1      '?'  query mark
//   pos C + 3j + 1                a key of the context: keys are queried in successive random permutations
//                                 of the K keys, never the same key twice in a row
//   pos C + 3j + 2                the value paired with that key in the context
//   labels[t] = tokens[t+1] for t in [0, S-1), except -1 where tokens[t] and tokens[t+1] are both '.';
//   labels[S-1] = -1
//   long_range[t] = 1 exactly at the query keys, t = C + 3j + 1 (label = the queried value); 0 elsewhere.
//
// recall probe at depth d in [0, 1] (eval --task recall): the same layout, except that pair 0 (a random key) is placed
// as near as the fillers allow to context position 1 + d (C - 3) (d = 0: the first pair slot, d = 1: the last), the
// last query asks for it (the query before it, if it asked for pair 0 too, asks for another pair), and long_range is
// 1 only at that last query's key: one retrieval per sequence, at a known distance.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "core/check.h"
#include "data/dataset_internal.h"
#include "data/rng.h"

namespace rt::data_detail {
namespace {

constexpr int32_t kStart = '>';
constexpr int32_t kSeparator = '|';
constexpr int32_t kFiller = '.';
constexpr int32_t kQuery = '?';
constexpr std::string_view kCopySymbols = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::string_view kRecallKeys = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
constexpr std::string_view kRecallValues = "0123456789";
constexpr int64_t kCopyMinSeqLen = 4;
constexpr int64_t kRecallMinSeqLen = 16;
constexpr uint64_t kCopyTag = 0x636f7079ULL;      // "copy"
constexpr uint64_t kRecallTag = 0x726563616c6cULL;  // "recall"

SplitMix64 sequence_rng(uint64_t seed, uint64_t task_tag, int64_t index) {
  return SplitMix64(seed_combine(seed_combine(seed, task_tag), static_cast<uint64_t>(index)));
}

Sequence sequence_empty(int64_t seq_len) {
  const auto s = static_cast<size_t>(seq_len);
  Sequence seq;
  seq.tokens.assign(s, kFiller);  // (S)
  seq.labels.assign(s, -1);       // (S)
  seq.long_range.assign(s, 0);    // (S)
  return seq;
}

class CopyDataset final : public Dataset {
 public:
  CopyDataset(int64_t seq_len, uint64_t seed) : seq_len_(seq_len), span_((seq_len - 2) / 2), seed_(seed) {}

  Sequence get(int64_t index) const override {
    RT_CHECK(index >= 0, "sequence index must be >= 0, got " + std::to_string(index));
    static_assert(kCopySymbols.size() == 64);
    SplitMix64 rng = sequence_rng(seed_, kCopyTag, index);
    Sequence seq = sequence_empty(seq_len_);
    const int64_t L = span_;
    seq.tokens[0] = kStart;
    seq.tokens[L + 1] = kSeparator;
    for (int64_t k = 0; k < L; ++k) {
      const int32_t symbol = static_cast<unsigned char>(kCopySymbols[rng.next() & 63]);
      seq.tokens[1 + k] = symbol;
      seq.tokens[L + 2 + k] = symbol;
    }
    for (int64_t t = 0; t <= 2 * L; ++t) seq.labels[t] = seq.tokens[t + 1];
    for (int64_t t = L + 1; t <= 2 * L; ++t) seq.long_range[t] = 1;
    return seq;
  }

  std::string describe() const override {
    return "copy: seq_len " + std::to_string(seq_len_) + ", a span of " + std::to_string(span_) +
           " symbols (64-symbol alphabet) then its copy, seed " + std::to_string(seed_);
  }
  bool has_long_range() const override { return true; }

 private:
  int64_t seq_len_;
  int64_t span_;  // L
  uint64_t seed_;
};

class RecallDataset final : public Dataset {
 public:
  RecallDataset(int64_t seq_len, uint64_t seed, double depth = -1)
      : seq_len_(seq_len),
        queries_(seq_len / 12),
        context_(seq_len - 3 * queries_),
        pairs_(std::min<int64_t>(static_cast<int64_t>(kRecallKeys.size()), (context_ - 1) / 4)),
        fillers_(context_ - 1 - 2 * pairs_),
        seed_(seed),
        depth_(depth) {
    RT_CHECK(queries_ >= 1 && pairs_ >= 1 && fillers_ >= 0, "recall layout does not fit seq_len");
  }

  Sequence get(int64_t index) const override {
    RT_CHECK(index >= 0, "sequence index must be >= 0, got " + std::to_string(index));
    SplitMix64 rng = sequence_rng(seed_, kRecallTag, index);
    Sequence seq = sequence_empty(seq_len_);
    const auto K = static_cast<size_t>(pairs_);

    // K distinct keys in random order (partial Fisher-Yates) and one value each.
    std::array<char, kRecallKeys.size()> letters{};
    std::copy(kRecallKeys.begin(), kRecallKeys.end(), letters.begin());
    std::array<int32_t, kRecallKeys.size()> keys{}, values{};
    for (size_t k = 0; k < K; ++k) {
      const size_t pick = k + static_cast<size_t>(rng.below(letters.size() - k));
      std::swap(letters[k], letters[pick]);
      keys[k] = static_cast<unsigned char>(letters[k]);
      values[k] = static_cast<unsigned char>(kRecallValues[rng.below(kRecallValues.size())]);
    }

    // Filler gaps: K sorted cut points in [0, F] split F fillers into K+1 gaps.
    std::array<int64_t, kRecallKeys.size()> cuts{};
    for (size_t k = 0; k < K; ++k) cuts[k] = static_cast<int64_t>(rng.below(static_cast<uint64_t>(fillers_) + 1));
    // The order of the pairs in the context: by cut point. A probe's pair 0 takes the cut that puts it nearest its
    // depth: with f fillers before it and the other pairs' cuts c_k, it starts at 1 + f + 2 #{k >= 1 : c_k < f}.
    std::array<size_t, kRecallKeys.size()> placed{};  // pair indices in context order
    for (size_t k = 0; k < K; ++k) placed[k] = k;
    if (probe()) {
      const int64_t want = 1 + static_cast<int64_t>(std::llround(depth_ * static_cast<double>(context_ - 3)));
      int64_t best = 0, best_gap = -1;
      for (int64_t f = 0; f <= fillers_; ++f) {
        int64_t before = 0;
        for (size_t k = 1; k < K; ++k) before += cuts[k] < f;
        const int64_t gap = std::abs(1 + f + 2 * before - want);
        if (best_gap < 0 || gap < best_gap) best = f, best_gap = gap;
      }
      cuts[0] = best;
    }
    std::stable_sort(placed.begin(), placed.begin() + static_cast<std::ptrdiff_t>(K), [&](size_t a, size_t b) {
      return cuts[a] != cuts[b] ? cuts[a] < cuts[b] : (a == 0 && b != 0);
    });

    // Context: start token, then gap_0, pair_0, gap_1, pair_1, ..., pair_{K-1}, gap_K (tokens start as '.').
    seq.tokens[0] = kStart;
    for (size_t m = 0; m < K; ++m) {
      const size_t k = placed[m];
      const int64_t pos = 1 + cuts[k] + 2 * static_cast<int64_t>(m);  // fillers before the m-th pair: its cut
      seq.tokens[pos] = keys[k];
      seq.tokens[pos + 1] = values[k];
    }

    // Queries: successive random permutations of the K pair indices, no key twice in a row.
    std::array<size_t, kRecallKeys.size()> order{};
    std::vector<size_t> asked(static_cast<size_t>(queries_));
    size_t used = K;  // position in the current permutation; K = exhausted
    size_t last = K;  // previous queried pair; K = none
    for (int64_t j = 0; j < queries_; ++j) {
      if (used == K) {
        for (size_t k = 0; k < K; ++k) order[k] = k;
        for (size_t k = K; k > 1; --k) std::swap(order[k - 1], order[rng.below(k)]);
        if (K > 1 && order[0] == last) std::swap(order[0], order[1 + rng.below(K - 1)]);
        used = 0;
      }
      last = asked[static_cast<size_t>(j)] = order[used++];
    }
    if (probe()) {  // the last query asks for pair 0, the one before for another (K >= 3: one differs from both)
      const size_t n = asked.size();
      asked[n - 1] = 0;
      if (n >= 2 && asked[n - 2] == 0)
        for (size_t k = 1; k < K; ++k)
          if (n < 3 || asked[n - 3] != k) {
            asked[n - 2] = k;
            break;
          }
    }
    for (int64_t j = 0; j < queries_; ++j) {
      const size_t pair = asked[static_cast<size_t>(j)];
      const int64_t pos = context_ + 3 * j;
      seq.tokens[pos] = kQuery;
      seq.tokens[pos + 1] = keys[pair];
      seq.tokens[pos + 2] = values[pair];
      seq.long_range[pos + 1] = !probe() || j + 1 == queries_;
    }

    for (int64_t t = 0; t + 1 < seq_len_; ++t) {
      const bool filler_to_filler = seq.tokens[t] == kFiller && seq.tokens[t + 1] == kFiller;
      seq.labels[t] = filler_to_filler ? -1 : seq.tokens[t + 1];
    }
    return seq;
  }

  std::string describe() const override {
    return "recall" + std::string(probe() ? " probe" : "") + ": seq_len " + std::to_string(seq_len_) + ", " +
           std::to_string(pairs_) + " key-value pairs scattered over the first " + std::to_string(context_) +
           " tokens, " + std::to_string(queries_) + (queries_ == 1 ? " query" : " queries") +
           (probe() ? ", the last asking for the pair at depth " + std::to_string(depth_) : std::string()) + ", seed " +
           std::to_string(seed_);
  }
  bool has_long_range() const override { return true; }

 private:
  int64_t seq_len_;
  int64_t queries_;  // Q
  int64_t context_;  // C
  int64_t pairs_;    // K
  int64_t fillers_;  // F
  uint64_t seed_;
  double depth_;  // the probe's depth in [0, 1]; < 0: the training task
  bool probe() const { return depth_ >= 0; }
};

void synthetic_check(const char* task, int64_t seq_len, int64_t min_seq_len, int64_t vocab_size,
                     const char* layout) {
  RT_USER_CHECK(vocab_size >= 256, std::string("data.task=") + task +
                                       " uses byte tokens: model.vocab_size must be >= 256 (got " +
                                       std::to_string(vocab_size) + ")");
  RT_USER_CHECK(seq_len >= min_seq_len, std::string("data.task=") + task + " needs train.seq_len >= " +
                                            std::to_string(min_seq_len) + " (got " + std::to_string(seq_len) +
                                            ") to fit " + layout);
}

}  // namespace

std::unique_ptr<Dataset> copy_dataset_make(int64_t seq_len, int64_t vocab_size, uint64_t seed) {
  synthetic_check("copy", seq_len, kCopyMinSeqLen, vocab_size, "a start token, a span, a separator and the copy");
  return std::make_unique<CopyDataset>(seq_len, seed);
}

std::unique_ptr<Dataset> recall_dataset_make(int64_t seq_len, int64_t vocab_size, uint64_t seed, double depth) {
  synthetic_check("recall", seq_len, kRecallMinSeqLen, vocab_size, "key-value pairs and at least one query");
  return std::make_unique<RecallDataset>(seq_len, seed, depth);
}

}  // namespace rt::data_detail
