#include "store/env.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <thread>

namespace rill {

const char* FaultPointName(FaultPoint point) {
  switch (point) {
    case FaultPoint::kBeforeLogCommit: return "before-log-commit";
    case FaultPoint::kAfterLogCommit: return "after-log-commit";
    case FaultPoint::kBeforeComplete: return "before-complete";
  }
  return "?";
}

int64_t Env::NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void Env::SleepFor(std::chrono::microseconds duration) { std::this_thread::sleep_for(duration); }

Status Env::Sync(int fd, const std::string& path) {
  if (::fsync(fd) == 0) return Status::OK();
  return Status::IOError(fmt::format("fsync {} failed: {}", path, std::strerror(errno)));
}

Status Env::Rename(const std::string& from, const std::string& to) {
  if (std::rename(from.c_str(), to.c_str()) == 0) return Status::OK();
  return Status::IOError(fmt::format("cannot rename {} to {}: {}", from, to, std::strerror(errno)));
}

Status Env::AtFault(FaultPoint) { return Status::OK(); }

Env* Env::Default() {
  static Env* env = new Env;  // never destroyed: threads may use it during exit
  return env;
}

}  // namespace rill
