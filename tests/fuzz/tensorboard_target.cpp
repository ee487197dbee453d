// Fuzz target: a TensorBoard event file (trainer/tensorboard.h: TFRecord framing, CRC32C, Event protobuf), as
// `ringtrain plot` reads it. Input: one mode byte, then the file. Mode bit 0 set: the rest is a sequence of record
// payloads, each a 2-byte little-endian length and its bytes, framed by the target with correct lengths and checksums,
// so that the fuzzer's changes reach the Event decoder.
#include "tests/fuzz/fuzz_targets.h"
#include "trainer/tensorboard.h"

namespace rt::fuzz {

namespace {

void put_le(std::string& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

std::string framed(std::string_view payloads) {
  std::string out;
  while (payloads.size() >= 2) {
    const size_t n = std::min<size_t>(
        static_cast<unsigned char>(payloads[0]) | (static_cast<unsigned char>(payloads[1]) << 8), payloads.size() - 2);
    const std::string_view record = payloads.substr(2, n);
    payloads.remove_prefix(2 + n);
    std::string length;
    put_le(length, record.size(), 8);
    out += length;
    put_le(out, tfrecord_masked_crc(length.data(), 8), 4);
    out += record;
    put_le(out, tfrecord_masked_crc(record.data(), record.size()), 4);
  }
  return out;
}

}  // namespace

bool tensorboard_target(const uint8_t* data, size_t size) {
  if (size == 0) return false;
  const std::string_view rest = as_text(data + 1, size - 1);
  const std::string path = scratch_dir() + "/events.out.tfevents.fuzz";
  write_file(path, (data[0] & 1) ? framed(rest) : std::string(rest));
  return result_or_user_error([&] { tensorboard_read(path); });
}

}  // namespace rt::fuzz
