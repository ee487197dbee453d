// Fuzz target: an llm.c token shard file (data/shard.h), its header and its tokens, read for a vocabulary of 50257
// (GPT-2's, what llm.c writes). Accepted shards must hold exactly the header's count of tokens, each in the vocabulary.
#include "data/shard.h"
#include "tests/fuzz/fuzz_targets.h"

namespace rt::fuzz {

bool shard_target(const uint8_t* data, size_t size) {
  const std::string path = scratch_dir() + "/shard.bin";
  write_file(path, as_text(data, size));
  constexpr int64_t kVocab = 50257;
  return result_or_user_error([&] {
    const std::vector<uint16_t> tokens = shard_read(path, kVocab);
    if (size != static_cast<size_t>(kShardHeaderInts) * 4 + 2 * tokens.size())
      wrong_result("a shard accepted whose size is not its header plus its tokens");
    for (uint16_t t : tokens)
      if (t >= kVocab) wrong_result("a token past the vocabulary accepted");
  });
}

}  // namespace rt::fuzz
