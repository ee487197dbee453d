// TensorBoard event files: TFRecord framing with ISA-L's CRC32C, Event and Summary messages from protobuf.
#include "trainer/tensorboard.h"

#include <isa-l/crc.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/check.h"
#include "trainer/tensorboard_event.pb.h"

namespace rt {
namespace {

double unix_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

template <class T>
void put_le(std::string& out, T v) {
  for (size_t i = 0; i < sizeof(T); ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

template <class T>
T get_le(const std::string& in, size_t at) {
  T v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) v |= static_cast<T>(static_cast<unsigned char>(in[at + i])) << (8 * i);
  return v;
}

}  // namespace

uint32_t tfrecord_masked_crc(const void* data, size_t n) {
  // crc32_iscsi is CRC32C without the final inversion: ~crc32_iscsi(x, n, ~0) is the standard CRC32C.
  const uint32_t crc =
      ~crc32_iscsi(static_cast<unsigned char*>(const_cast<void*>(data)), static_cast<int>(n), 0xFFFFFFFFu);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

TensorBoardWriter::TensorBoardWriter(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  char host[256] = "localhost";
  gethostname(host, sizeof host - 1);
  path_ = (std::filesystem::path(dir) /
           ("events.out.tfevents." + std::to_string(static_cast<int64_t>(unix_seconds())) + "." + host + ".ringtrain"))
              .string();
  file_ = std::fopen(path_.c_str(), "wb");
  if (!file_)
    throw UserError("cannot write the TensorBoard file '" + path_ + "': " + std::strerror(errno) +
                    "; set log.dir to a writable directory or log.tensorboard=false");
  tensorboard::Event first;
  first.set_wall_time(unix_seconds());
  first.set_file_version("brain.Event:2");
  record(first.SerializeAsString());
  flush();
}

TensorBoardWriter::~TensorBoardWriter() {
  if (file_) std::fclose(file_);
}

void TensorBoardWriter::scalar(const std::string& tag, int64_t step, double value) {
  tensorboard::Event event;
  event.set_wall_time(unix_seconds());
  event.set_step(step);
  tensorboard::Summary::Value* v = event.mutable_summary()->add_value();
  v->set_tag(tag);
  v->set_simple_value(static_cast<float>(value));
  record(event.SerializeAsString());
}

// uint64 length, uint32 masked CRC of those 8 bytes, the bytes, uint32 masked CRC of the bytes (little-endian).
void TensorBoardWriter::record(const std::string& bytes) {
  std::string out;
  put_le<uint64_t>(out, bytes.size());
  put_le<uint32_t>(out, tfrecord_masked_crc(out.data(), 8));
  out += bytes;
  put_le<uint32_t>(out, tfrecord_masked_crc(bytes.data(), bytes.size()));
  if (std::fwrite(out.data(), 1, out.size(), file_) != out.size())
    throw UserError("cannot write the TensorBoard file '" + path_ + "': " + std::strerror(errno));
}

void TensorBoardWriter::flush() { std::fflush(file_); }

std::vector<TensorBoardScalar> tensorboard_read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UserError("cannot read TensorBoard file '" + path + "'");
  const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<TensorBoardScalar> scalars;
  for (size_t at = 0, record = 0; at < data.size(); ++record) {
    const std::string where = "TensorBoard file '" + path + "' record " + std::to_string(record);
    RT_USER_CHECK(at + 12 <= data.size(), where + " is truncated (its header)");
    const uint64_t n = get_le<uint64_t>(data, at);
    RT_USER_CHECK(get_le<uint32_t>(data, at + 8) == tfrecord_masked_crc(data.data() + at, 8),
                  where + ": the length's checksum does not match");
    RT_USER_CHECK(n <= data.size() && at + 12 + n + 4 <= data.size(), where + " is truncated (its data)");
    RT_USER_CHECK(get_le<uint32_t>(data, at + 12 + n) == tfrecord_masked_crc(data.data() + at + 12, n),
                  where + ": the data's checksum does not match");
    tensorboard::Event event;
    RT_USER_CHECK(event.ParseFromArray(data.data() + at + 12, static_cast<int>(n)), where + " is not an Event");
    for (const tensorboard::Summary::Value& v : event.summary().value())
      scalars.push_back({v.tag(), event.step(), v.simple_value(), event.wall_time()});
    at += 12 + n + 4;
  }
  return scalars;
}

}  // namespace rt
