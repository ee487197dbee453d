// POSIX durability for checkpoints: write + fsync files, fsync directories, rename into place.
#include "checkpoints/atomic_dir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/check.h"

namespace rt {
namespace {

namespace fs = std::filesystem;

[[noreturn]] void fail(const std::string& what, const std::string& path) {
  throw UserError("cannot " + what + " '" + path + "': " + std::strerror(errno) +
                  "; set checkpoint.dir to a writable directory with free space");
}

}  // namespace

SyncedFile::SyncedFile(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) fail("create", path);
  hash_ = XXH3_createState();
  RT_CHECK(hash_ != nullptr, "out of memory");
  XXH3_64bits_reset(hash_);
}

SyncedFile::~SyncedFile() {
  if (fd_ >= 0) ::close(fd_);
  XXH3_freeState(hash_);
}

void SyncedFile::write(const void* data, size_t bytes) {
  XXH3_64bits_update(hash_, data, bytes);
  const char* p = static_cast<const char*>(data);
  size_t left = bytes;
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("write", path_);
    p += n;
    left -= static_cast<size_t>(n);
  }
  size_ += bytes;
}

uint64_t SyncedFile::finish() {
  if (::fsync(fd_) != 0) fail("fsync", path_);
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail("close", path_);
  return XXH3_64bits_digest(hash_);
}

void dir_sync(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) fail("open directory", path);
  const bool ok = ::fsync(fd) == 0 || errno == EINVAL;  // some file systems cannot sync directories
  ::close(fd);
  if (!ok) fail("fsync directory", path);
}

void dir_commit(const std::string& temp, const std::string& final) {
  dir_sync(temp);
  const fs::path parent = fs::path(final).parent_path();
  const std::string aside = (parent / (".replaced_" + fs::path(final).filename().string())).string();
  std::error_code ec;
  const bool replacing = fs::exists(final, ec);
  if (replacing) {
    fs::remove_all(aside, ec);
    if (std::rename(final.c_str(), aside.c_str()) != 0) fail("move aside", final);
  }
  if (std::rename(temp.c_str(), final.c_str()) != 0) fail("rename into place", temp);
  dir_sync(parent.string());
  if (replacing) fs::remove_all(aside, ec);
}

void file_replace_atomically(const std::string& path, const std::string& text) {
  const std::string temp = path + ".tmp";
  SyncedFile file(temp);
  file.write(text.data(), text.size());
  file.finish();
  if (std::rename(temp.c_str(), path.c_str()) != 0) fail("rename into place", temp);
  dir_sync(fs::path(path).parent_path().string());
}

std::string file_read(const std::string& path) {
  auto unreadable = [&] { return UserError("cannot read '" + path + "': " + std::strerror(errno)); };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw unreadable();
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    throw unreadable();
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw UserError("cannot read '" + path + "': not a regular file");
  }
  std::string data(static_cast<size_t>(st.st_size), '\0');
  size_t at = 0;
  while (at < data.size()) {
    ssize_t n = ::read(fd, data.data() + at, data.size() - at);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      throw unreadable();
    }
    if (n == 0) break;  // shrank while we read
    at += static_cast<size_t>(n);
  }
  ::close(fd);
  data.resize(at);
  return data;
}

}  // namespace rt
