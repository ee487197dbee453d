// TensorBoard event files: scalar summaries as TFRecord records (length, masked CRC32C, Event protobuf, masked CRC32C).
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace rt {

// TFRecord's checksum: CRC32C (ISA-L's crc32_iscsi) rotated right by 15 bits plus 0xa282ead8.
uint32_t tfrecord_masked_crc(const void* data, size_t n);

// Appends events to <dir>/events.out.tfevents.<unix time>.<host>.ringtrain, which starts with the file_version event
// ("brain.Event:2"). Each scalar is one Event holding one Summary value; records reach the file at flush() and on
// destruction. Throws rt::UserError when the file cannot be written.
class TensorBoardWriter {
 public:
  explicit TensorBoardWriter(const std::string& dir);
  ~TensorBoardWriter();
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  void scalar(const std::string& tag, int64_t step, double value);
  void flush();
  const std::string& path() const { return path_; }

 private:
  void record(const std::string& bytes);
  std::string path_;
  std::FILE* file_ = nullptr;
};

struct TensorBoardScalar {
  std::string tag;
  int64_t step = 0;
  float value = 0;
  double wall_time = 0;
};

// Every scalar of an event file, in order, after checking each record's two checksums and parsing its Event.
// Throws rt::UserError naming the file and the record for a truncated record, a checksum that does not match, or
// bytes that are no Event.
std::vector<TensorBoardScalar> tensorboard_read(const std::string& path);

}  // namespace rt
