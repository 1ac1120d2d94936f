// An advisory lock on a file, held by this object: flock(2) on a file that
// is created if missing and never deleted (deleting a lock file while
// another process waits on it would hand out two locks). The kernel
// releases it when the process dies, so a killed holder never leaves a
// stale lock behind. Two FileLocks on the same path exclude each other also
// within one process (each has its own open file description).
//
// Thread safety: one FileLock object is used by one thread at a time;
// distinct FileLocks (on any paths) from any threads.
#pragma once

#include <string>

#include "store/status.h"

namespace rill {

class FileLock {
 public:
  FileLock() = default;
  ~FileLock();
  FileLock(FileLock&& other) noexcept;
  FileLock& operator=(FileLock&& other) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

  // Takes the lock without waiting. Busy if another holder has it (the
  // message names `what` and the file); IOError if the file cannot be
  // opened or created (also when `path` is a symlink: O_NOFOLLOW) or flock
  // fails otherwise. A new file gets 0644 less the umask.
  static Result<FileLock> TryAcquire(const std::string& path, const std::string& what);

  bool held() const { return fd_ >= 0; }
  // Drops the lock (closes the file); a no-op when not held. The destructor
  // and move-assignment release too.
  void Release();

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace rill
