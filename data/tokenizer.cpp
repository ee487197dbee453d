// Byte-level tokenizer: each byte is one token; decoding maps out-of-range tokens to U+FFFD.
#include "data/tokenizer.h"

namespace rt {

std::vector<int32_t> tokenizer_encode(std::string_view text) {
  std::vector<int32_t> tokens(text.size());
  for (size_t i = 0; i < text.size(); ++i) tokens[i] = static_cast<unsigned char>(text[i]);
  return tokens;
}

std::string tokenizer_decode(const std::vector<int32_t>& tokens) {
  std::string text;
  text.reserve(tokens.size());
  for (int32_t token : tokens) {
    if (token >= 0 && token < kTokenizerVocabSize) {
      text.push_back(static_cast<char>(static_cast<unsigned char>(token)));
    } else {
      text += "\xEF\xBF\xBD";  // U+FFFD REPLACEMENT CHARACTER
    }
  }
  return text;
}

}  // namespace rt
