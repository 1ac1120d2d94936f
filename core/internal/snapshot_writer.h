// SnapshotWriter: the actor runtime's one thread that writes snapshots.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "store/event_store.h"

namespace rill::actors {

// Shards hand it the snapshots their actors are due for and go on; it puts
// them into the store one at a time, in the order handed over. Snapshots are
// derived data: a failed write only costs the next activation replay time,
// so it is dropped without a word.
class SnapshotWriter {
 public:
  static constexpr size_t kMaxQueued = 16384;

  // Starts the thread (throws std::system_error if it cannot: for
  // ActorRuntime::Start). `store` must outlive the writer.
  explicit SnapshotWriter(EventStore* store);
  // Writes what is queued, then stops the thread.
  ~SnapshotWriter();

  // Queues `snapshot` of `stream`; false (skipped) when kMaxQueued are
  // queued already: rather than stalling a shard, the next threshold writes
  // it.
  bool Put(std::string stream, Snapshot snapshot);
  // Waits until everything queued so far is written (or failed).
  void Drain();

 private:
  void Run();

  EventStore* store_;
  std::mutex mu_;
  std::condition_variable cv_, idle_cv_;
  std::deque<std::pair<std::string, Snapshot>> queue_;
  bool stop_ = false, busy_ = false;
  std::thread thread_;  // last: starts after every member is ready
};

}  // namespace rill::actors
