// TensorBoard event files: the masked CRC32C against its published check value, records written and read back with
// their checksums verified, a damaged record named, and a training run's file holding its metrics.
#include "trainer/tensorboard.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "core/check.h"

namespace rt {
namespace {

namespace fs = std::filesystem;

fs::path fresh_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("ringtrain_tb_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(dir);
  return dir;
}

// CRC32C("123456789") = 0xE3069283 (the Castagnoli check value); TFRecord masks it: rotr15 + 0xa282ead8.
TEST(TensorBoard, MaskedCrc32cOfTheCheckString) {
  const uint32_t crc = 0xE3069283u, masked = ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
  EXPECT_EQ(tfrecord_masked_crc("123456789", 9), masked);
}

TEST(TensorBoard, ScalarsRoundTripAndDamageIsNamed) {
  const fs::path dir = fresh_dir("roundtrip");
  std::string path;
  {
    TensorBoardWriter tb(dir.string());
    path = tb.path();
    for (int64_t step = 1; step <= 5; ++step) {
      tb.scalar("train/loss", step, 4.0 / static_cast<double>(step));
      tb.scalar("train/lr", step, 1e-3 * static_cast<double>(step));
    }
  }
  EXPECT_EQ(fs::path(path).filename().string().rfind("events.out.tfevents.", 0), 0u);
  const std::vector<TensorBoardScalar> s = tensorboard_read(path);
  ASSERT_EQ(s.size(), 10u);
  for (int64_t step = 1; step <= 5; ++step) {
    const TensorBoardScalar& loss = s[static_cast<size_t>(2 * (step - 1))];
    EXPECT_EQ(loss.tag, "train/loss");
    EXPECT_EQ(loss.step, step);
    EXPECT_FLOAT_EQ(loss.value, static_cast<float>(4.0 / static_cast<double>(step)));
    EXPECT_GT(loss.wall_time, 1.6e9);
  }
  // Flip one byte inside the third record's data: the reader names that record and the data's checksum.
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  size_t at = 0;
  for (int r = 0; r < 2; ++r) {
    uint64_t n = 0;
    for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[at + i])) << (8 * i);
    at += 12 + n + 4;
  }
  bytes[at + 14] ^= 0x20;
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  try {
    tensorboard_read(path);
    FAIL() << "a damaged record was read";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("record 2: the data's checksum does not match"), std::string::npos)
        << e.what();
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace rt
