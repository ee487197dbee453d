// Test helpers for checkpoints: damage a file in place, and check a message names every expected fragment.
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>

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

// Passes when `text` contains every fragment; otherwise shows the text and the first missing fragment.
inline ::testing::AssertionResult contains(const std::string& text, std::initializer_list<std::string> fragments) {
  for (const std::string& f : fragments)
    if (text.find(f) == std::string::npos) return ::testing::AssertionFailure() << "lacks '" << f << "' in:\n" << text;
  return ::testing::AssertionSuccess();
}

}  // namespace rt_test
