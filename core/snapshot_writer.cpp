#include "core/internal/snapshot_writer.h"

#include "store/start_thread.h"

namespace rill::actors {

SnapshotWriter::SnapshotWriter(EventStore* store)
    : store_(store), thread_(MakeThread("snapshot writer", [this] { Run(); })) {}

SnapshotWriter::~SnapshotWriter() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

bool SnapshotWriter::Put(std::string stream, Snapshot snapshot) {
  std::lock_guard lk(mu_);
  if (queue_.size() >= kMaxQueued) return false;
  queue_.emplace_back(std::move(stream), std::move(snapshot));
  cv_.notify_all();
  return true;
}

void SnapshotWriter::Drain() {
  std::unique_lock lk(mu_);
  idle_cv_.wait(lk, [&] { return queue_.empty() && !busy_; });
}

void SnapshotWriter::Run() {
  std::unique_lock lk(mu_);
  for (;;) {
    cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty() && stop_) return;
    auto item = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    lk.unlock();
    (void)store_->PutSnapshot(item.first, item.second);  // derived: a failure only costs replay time
    lk.lock();
    busy_ = false;
    if (queue_.empty()) idle_cv_.notify_all();
  }
}

}  // namespace rill::actors
