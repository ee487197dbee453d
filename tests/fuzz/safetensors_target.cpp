// Fuzz target: the safetensors header and tensor index (checkpoints/safetensors.h) of a file held in memory.
#include <cstring>

#include "checkpoints/safetensors.h"
#include "tests/fuzz/fuzz_targets.h"

namespace rt::fuzz {

bool safetensors_target(const uint8_t* data, size_t size) {
  // A copy of exactly `size` bytes, so that AddressSanitizer sees any read past the file's end.
  std::vector<char> file(data, data + size);
  return result_or_user_error([&] {
    const SafetensorsIndex index = safetensors_parse(file.data(), file.size(), "fuzz.safetensors");
    // Accepted: every tensor lies inside the data section, holds its shape and dtype, and they tile it exactly.
    if (index.data_start < 8 || index.data_start > size) wrong_result("data_start outside the file");
    uint64_t total = 0, previous_end = index.data_start;
    for (const SafetensorsEntry& e : index.tensors) {
      const size_t element = safetensors_dtype_size(e.dtype);
      if (element == 0) wrong_result("tensor " + e.name + " accepted with dtype " + e.dtype);
      uint64_t numel = 1;
      for (int64_t d : e.shape) {
        if (d < 0) wrong_result("tensor " + e.name + " accepted with a negative dimension");
        if (d != 0 && numel > UINT64_MAX / static_cast<uint64_t>(d))
          wrong_result("tensor " + e.name + ": numel overflows");
        numel *= static_cast<uint64_t>(d);
      }
      if (numel > UINT64_MAX / element || numel * element != e.length)
        wrong_result("tensor " + e.name + ": length does not hold its shape");
      if (e.offset != previous_end) wrong_result("tensor " + e.name + " is not right after the previous one");
      if (e.offset > size || e.length > size - e.offset) wrong_result("tensor " + e.name + " lies past the file's end");
      if (e.length > 0) {
        volatile char first = file[e.offset], last = file[e.offset + e.length - 1];
        (void)first;
        (void)last;
      }
      previous_end = e.offset + e.length;
      total += e.length;
    }
    if (index.data_start + total != size) wrong_result("the tensors do not cover the data section");
  });
}

}  // namespace rt::fuzz
