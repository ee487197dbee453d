// safetensors header writing and checked parsing (the format: github.com/huggingface/safetensors).
#include "checkpoints/safetensors.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <nlohmann/json.hpp>

#include "core/check.h"

namespace rt {
namespace {

constexpr uint64_t kMaxHeaderBytes = 100u << 20;  // the reference implementation's limit

uint64_t numel_of(const std::vector<int64_t>& shape) {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

// The bytes of `shape` elements of `element` bytes each, or nullopt when that does not fit in 64 bits.
std::optional<uint64_t> bytes_of(const std::vector<int64_t>& shape, uint64_t element) {
  uint64_t n = element;
  for (int64_t d : shape) {
    const auto u = static_cast<uint64_t>(d);
    if (u != 0 && n > UINT64_MAX / u) return std::nullopt;
    n *= u;
  }
  return n;
}

}  // namespace

size_t safetensors_dtype_size(const std::string& dtype) {
  if (dtype == "F32") return 4;
  if (dtype == "I64") return 8;
  return 0;
}

std::string safetensors_header(const std::vector<SafetensorsTensor>& tensors,
                               const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header;
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t at = 0;
  for (const SafetensorsTensor& t : tensors) {
    RT_CHECK(t.bytes == numel_of(t.shape) * safetensors_dtype_size(t.dtype), "tensor " + t.name + " has the wrong size");
    header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {at, at + t.bytes}}};
    at += t.bytes;
  }
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  const uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + json;
}

SafetensorsIndex safetensors_parse(const char* bytes, size_t size, const std::string& what) {
  auto fail = [&](const std::string& why) -> void { throw UserError(what + " is not a valid safetensors file: " + why); };
  if (size < 8) fail("it has " + std::to_string(size) + " bytes, fewer than the 8 of the header length");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  if (n > kMaxHeaderBytes || n > size - 8)
    fail("its header length " + std::to_string(n) + " exceeds the file's " + std::to_string(size) + " bytes");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes + 8, bytes + 8 + n);
  } catch (const nlohmann::json::exception& e) {
    fail(std::string("its JSON header does not parse (") + e.what() + ")");
  }
  if (!header.is_object()) fail("its JSON header is not an object");

  SafetensorsIndex index;
  index.data_start = 8 + n;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;  // data_offsets, for the back-to-back check
  for (auto& [name, value] : header.items()) {
    if (name == "__metadata__") {
      if (!value.is_object()) fail("__metadata__ is not an object");
      for (auto& [k, v] : value.items()) {
        if (!v.is_string()) fail("__metadata__." + k + " is not a string");
        index.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    const auto& dtype = value.find("dtype");
    const auto& shape = value.find("shape");
    const auto& offsets = value.find("data_offsets");
    if (!value.is_object() || dtype == value.end() || shape == value.end() || offsets == value.end() ||
        !dtype->is_string() || !shape->is_array() || !offsets->is_array() || offsets->size() != 2)
      fail("tensor " + name + " lacks dtype, shape or data_offsets [begin, end]");
    SafetensorsEntry e;
    e.name = name;
    e.dtype = dtype->get<std::string>();
    if (safetensors_dtype_size(e.dtype) == 0) fail("tensor " + name + " has dtype " + e.dtype + "; ringtrain reads F32 and I64");
    for (const auto& d : *shape) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
        fail("tensor " + name + " has a shape entry that is not an integer from 0 to 2^63-1");
      e.shape.push_back(d.get<int64_t>());
    }
    if (!(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned())
      fail("tensor " + name + " has data_offsets that are not non-negative integers");
    const uint64_t begin = (*offsets)[0].get<uint64_t>(), end = (*offsets)[1].get<uint64_t>();
    const std::optional<uint64_t> bytes = bytes_of(e.shape, safetensors_dtype_size(e.dtype));
    if (end < begin || !bytes || end - begin != *bytes)
      fail("tensor " + name + " has data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
           "] that do not hold its shape and dtype");
    e.offset = index.data_start + begin;
    e.length = end - begin;
    ranges.emplace_back(begin, end);
    index.tensors.push_back(std::move(e));
  }
  std::sort(ranges.begin(), ranges.end());
  uint64_t at = 0;
  for (const auto& [begin, end] : ranges) {
    if (begin != at) fail("its tensors do not lie back to back (a gap or an overlap at data byte " + std::to_string(at) + ")");
    at = end;
  }
  if (index.data_start + at != size)
    fail("its tensors end at byte " + std::to_string(index.data_start + at) + " but the file has " +
         std::to_string(size) + " bytes");
  std::sort(index.tensors.begin(), index.tensors.end(),
            [](const SafetensorsEntry& a, const SafetensorsEntry& b) { return a.offset < b.offset; });
  return index;
}

}  // namespace rt
