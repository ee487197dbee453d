// Test helpers for checkpoints: damage a file in place (and, from tests/test_process.h, check a message's fragments).
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>

#include "tests/test_process.h"

namespace rt_test {

// Flips the bits `mask` of the byte at `offset` of `path`.
inline void flip_byte(const std::filesystem::path& path, uint64_t offset, char mask = 0x10) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.read(&c, 1);
  c ^= mask;
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
}

}  // namespace rt_test
