// Task `text`: files tokenized as bytes, each file one document, cut into next-token windows (see WindowDataset).
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/check.h"
#include "data/dataset_internal.h"
#include "data/path_list.h"

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

std::unique_ptr<Dataset> text_dataset_make(const DatasetSpec& spec) {
  RT_USER_CHECK(!spec.paths.empty(), "data.path is required for data.task=text; give a text file, a directory of "
                                     "them, or a list (each file is one document)");
  const std::vector<std::string> files = path_list_expand(spec.paths, "a text file");
  std::vector<uint16_t> stream;     // (N) byte tokens, eot before each file when given
  std::vector<int64_t> file_begins;  // where each file's document starts in the stream
  for (const std::string& path : files) {
    const std::string bytes = text_file_read(path);
    file_begins.push_back(static_cast<int64_t>(stream.size()));
    if (spec.eot >= 0) stream.push_back(static_cast<uint16_t>(spec.eot));
    for (size_t i = 0; i < bytes.size(); ++i) {
      const int64_t token = static_cast<unsigned char>(bytes[i]);
      RT_USER_CHECK(token < spec.vocab_size, "text file '" + path + "' has byte " + std::to_string(token) +
                                                 " at position " + std::to_string(i) + " but model.vocab_size is " +
                                                 std::to_string(spec.vocab_size) +
                                                 "; byte-level text needs model.vocab_size >= 256");
      stream.push_back(static_cast<uint16_t>(token));
    }
  }
  const int64_t count = static_cast<int64_t>(stream.size());
  const std::string what = files.size() == 1 ? "text file '" + files[0] + "'" : std::to_string(files.size()) + " text files";
  RT_USER_CHECK(count >= spec.seq_len + 1,
                what + (files.size() == 1 ? " has " : " hold ") + std::to_string(count) + " tokens (bytes" +
                    (spec.eot >= 0 ? " and eot" : "") + ") but train.seq_len=" + std::to_string(spec.seq_len) +
                    " needs at least " + std::to_string(spec.seq_len + 1) +
                    "; use more text or a smaller train.seq_len");
  std::vector<int64_t> begins = document_begins(stream, spec.eot, file_begins);
  const std::string source = files.size() == 1 ? "'" + files[0] + "'" : std::to_string(files.size()) + " files";
  return std::make_unique<WindowDataset>(std::move(stream), std::move(begins), spec.eot, spec.seq_len, spec.seed,
                                         "text " + source + ": " + std::to_string(count) + " byte tokens");
}

}  // namespace rt::data_detail
