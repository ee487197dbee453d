// Task `text`: any file tokenized as bytes, cut into next-token windows (see WindowDataset).
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/check.h"
#include "data/dataset_internal.h"

namespace rt::data_detail {
namespace {

// The whole file as bytes; UserError naming the file and strerror if it cannot be opened or read.
std::string text_file_read(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    throw UserError("cannot read text file '" + path + "' (data.path): " + std::strerror(errno));
  }
  std::string bytes;
  char buffer[1 << 16];
  size_t got = 0;
  while ((got = std::fread(buffer, 1, sizeof buffer, file)) > 0) bytes.append(buffer, got);
  const bool failed = std::ferror(file) != 0;
  const int error = errno;
  std::fclose(file);
  if (failed) throw UserError("cannot read text file '" + path + "' (data.path): " + std::strerror(error));
  return bytes;
}

}  // namespace

std::unique_ptr<Dataset> text_dataset_make(const std::string& path, int64_t seq_len, int64_t vocab_size,
                                           uint64_t seed) {
  RT_USER_CHECK(!path.empty(), "data.path is required for data.task=text; give a text file");
  const std::string bytes = text_file_read(path);
  const int64_t count = static_cast<int64_t>(bytes.size());
  RT_USER_CHECK(count >= seq_len + 1,
                "text file '" + path + "' has " + std::to_string(count) + " tokens (bytes) but train.seq_len=" +
                    std::to_string(seq_len) + " needs at least " + std::to_string(seq_len + 1) +
                    "; use a longer file or a smaller train.seq_len");
  std::vector<uint16_t> stream(bytes.size());  // (N) byte tokens
  for (size_t i = 0; i < bytes.size(); ++i) {
    const int64_t token = static_cast<unsigned char>(bytes[i]);
    RT_USER_CHECK(token < vocab_size, "text file '" + path + "' has byte " + std::to_string(token) +
                                          " at position " + std::to_string(i) + " but model.vocab_size is " +
                                          std::to_string(vocab_size) +
                                          "; byte-level text needs model.vocab_size >= 256");
    stream[i] = static_cast<uint16_t>(token);
  }
  return std::make_unique<WindowDataset>(std::move(stream), seq_len, seed,
                                         "text '" + path + "': " + std::to_string(count) + " byte tokens");
}

}  // namespace rt::data_detail
