// Env: what rill takes from the world besides LMDB's own I/O (the clock,
// sleeping, the fsyncs of the files rill writes itself) and the points where
// a test injects faults. Everything defaults to the real thing
// (Env::Default()); a test derives from EnvWrapper and overrides only what it
// controls, so time can be moved instead of slept through and a fault lands
// at a named step instead of at a guessed moment.
//
// LMDB's own reads, writes and fsyncs cannot go through an Env (liblmdb
// calls the system directly): tests reach those with an interposed fdatasync
// (store/tests/fault_injection_test.cpp) and the reliability battery's
// LD_PRELOAD shim.
//
// Thread safety: an Env is called from every thread the store and the core
// run (writer, completer, indexer, shards, callers); overrides must be
// thread-safe. An Env must outlive everything that was given it.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "store/status.h"

namespace rill {

// The steps of the store's write path where a test may inject a fault.
enum class FaultPoint : uint8_t {
  // Before each log commit, on the writer thread. A non-OK status fails that
  // batch as a failed write would (each of its callers gets the status) and
  // the writer stays usable; a real fsync failure stops it instead.
  kBeforeLogCommit,
  // On the writer thread, after a batch's commit. The status is ignored.
  kAfterLogCommit,
  // On the completer thread, before a committed batch enters the tail (where
  // this process's reads see it) and its callbacks run. The status is ignored.
  kBeforeComplete,
};
const char* FaultPointName(FaultPoint point);  // "before-log-commit", ...

class Env {
 public:
  virtual ~Env() = default;
  // The real clock, real sleeps, real fsyncs, no faults. Never destroyed
  // (threads may still use it during exit).
  static Env* Default();

  // Microseconds since the Unix epoch (system_clock: it may jump): event
  // times, stream max-age, the timestamps read models record.
  virtual int64_t NowMicros();
  // Blocks the calling thread.
  virtual void SleepFor(std::chrono::microseconds duration);
  // fsync of an open descriptor of a file rill writes itself (exports,
  // backups, read-model replays, config, markers: store/durable_file.h);
  // `path` names it in messages and lets a test pick a file. IOError on
  // failure. The descriptor stays open either way: the caller closes it.
  virtual Status Sync(int fd, const std::string& path);
  // rename(2), for the same files. IOError on failure; `from` is left as
  // it was.
  virtual Status Rename(const std::string& from, const std::string& to);
  // `point` was reached; see FaultPoint for what a non-OK status does there.
  // The default returns OK.
  virtual Status AtFault(FaultPoint point);
};

// Forwards every call to another Env: derive and override what a test
// controls (LevelDB's EnvWrapper).
class EnvWrapper : public Env {
 public:
  explicit EnvWrapper(Env* target) : target_(target) {}
  Env* target() const { return target_; }
  int64_t NowMicros() override { return target_->NowMicros(); }
  void SleepFor(std::chrono::microseconds duration) override { target_->SleepFor(duration); }
  Status Sync(int fd, const std::string& path) override { return target_->Sync(fd, path); }
  Status Rename(const std::string& from, const std::string& to) override { return target_->Rename(from, to); }
  Status AtFault(FaultPoint point) override { return target_->AtFault(point); }

 private:
  Env* target_;
};

}  // namespace rill
