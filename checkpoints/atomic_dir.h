// Durable, atomic file-system steps for checkpoints: synced writes, directory sync, rename into place.
#pragma once
#include <xxhash.h>

#include <cstdint>
#include <string>

namespace rt {

// A new file written front to back, hashed as it goes (XXH3-64 of every byte), fsynced by finish().
// Every failure throws rt::UserError naming the path and the system's reason.
class SyncedFile {
 public:
  explicit SyncedFile(const std::string& path);  // creates or truncates
  ~SyncedFile();
  SyncedFile(const SyncedFile&) = delete;
  SyncedFile& operator=(const SyncedFile&) = delete;
  void write(const void* data, size_t bytes);
  uint64_t size() const { return size_; }
  // fsync and close; returns the XXH3-64 of the whole file.
  uint64_t finish();

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
  XXH3_state_t* hash_ = nullptr;
};

// fsync a directory, so that the names created or renamed in it are durable.
void dir_sync(const std::string& path);

// Makes the complete, synced directory `temp` appear as `final` in one rename (a `final` already there is
// moved aside first and removed after), then syncs the parent. Both live in the same parent directory.
void dir_commit(const std::string& temp, const std::string& final);

// Replaces the small file `path` with `text` atomically: written beside it, fsynced, renamed over it.
void file_replace_atomically(const std::string& path, const std::string& text);

// The whole file; throws rt::UserError naming it when it cannot be read.
std::string file_read(const std::string& path);

}  // namespace rt
