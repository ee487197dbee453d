// Byte-level tokenizer: vocabulary of 256, token = byte value; the text and synthetic tasks use it.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace rt {

inline constexpr int32_t kTokenizerVocabSize = 256;

// text (n bytes) -> tokens (n), each in [0, 256).
std::vector<int32_t> tokenizer_encode(std::string_view text);
// tokens (n) -> text. Tokens outside [0, 256) (a model with a larger vocab) become U+FFFD, 3 bytes of UTF-8.
std::string tokenizer_decode(const std::vector<int32_t>& tokens);

}  // namespace rt
