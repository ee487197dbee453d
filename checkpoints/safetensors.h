// safetensors, Hugging Face's tensor file: 8-byte little-endian header length, a JSON header, raw data.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace rt {

// A tensor to write: its bytes are stored as they are (little-endian, row-major).
struct SafetensorsTensor {
  std::string name;
  std::string dtype;  // F32 | I64
  std::vector<int64_t> shape;
  const void* data = nullptr;
  size_t bytes = 0;   // numel(shape) * the dtype's size
};

// A tensor found in a file; offset is from the start of the file.
struct SafetensorsEntry {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  uint64_t offset = 0, length = 0;
};

struct SafetensorsIndex {
  std::vector<SafetensorsEntry> tensors;        // in file order
  std::map<std::string, std::string> metadata;  // "__metadata__"
  uint64_t data_start = 0;                      // 8 + header length
};

// Bytes per element of a safetensors dtype we use (F32, I64); 0 for any other.
size_t safetensors_dtype_size(const std::string& dtype);

// The file's first bytes: the 8-byte length and the JSON header (padded with spaces to a multiple of 8, so
// the data starts aligned), for `tensors` stored back to back in the given order right after it.
std::string safetensors_header(const std::vector<SafetensorsTensor>& tensors,
                               const std::map<std::string, std::string>& metadata);

// Parses and checks the header of a whole safetensors file (bytes, size): known dtypes, shapes that match
// the byte ranges, ranges back to back covering the data exactly. Throws rt::UserError naming `what`.
SafetensorsIndex safetensors_parse(const char* bytes, size_t size, const std::string& what);

}  // namespace rt
