// AppendQueue: the hand-over between appenders (any thread) and the one
// group-commit writer. Appenders Reserve a place (back-pressure: they wait
// while max_queued_requests are reserved and not yet taken), then Push the
// request; the writer takes whole batches with TakeBatch.
//
// Ordering: requests one thread pushes reach the writer in the order it
// pushed them, which is what lets an actor pipeline appends with exact
// expected versions without waiting for each.
//
// Why it is not a plain mutex + vector: 64 appenders on 2 cores convoyed on a
// blocking mutex, at a futex call per collision. An appender only try_locks;
// if another holds the lock it pushes onto a lock-free overflow stack (one
// CAS), which the next holder drains first. No notify unless the writer
// sleeps waiting for what was pushed, or someone waits for room.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "store/event_store.h"
#include "store/status.h"

namespace rill {

struct PendingAppend {
  AppendRequest request;
  std::function<void(Result<AppendResult>)> done;
  size_t bytes = 0;
  // Internal kinds: a flush marker carries no request; a system append
  // ($$stream) checks its expected version against `check_stream`.
  bool flush_marker = false;
  bool system = false;
  std::string check_stream;
  // No later than when it was queued (see AppendQueue::QueueLocked); the
  // batch deadline runs from the oldest request's.
  std::chrono::steady_clock::time_point enqueued;
};

class AppendQueue {
 public:
  // The limits it applies: max_queued_requests (back-pressure) and, for
  // TakeBatch, max_batch_requests, max_batch_bytes and max_batch_delay.
  explicit AppendQueue(const StoreOptions& options);
  ~AppendQueue();
  AppendQueue(const AppendQueue&) = delete;
  AppendQueue& operator=(const AppendQueue&) = delete;

  // Appender side. Reserve takes `places` places, waiting for room unless
  // `flush_marker` (a flush must never wait behind the back-pressure it is
  // meant to drain). Errors: IOError "store is closing" once Close ran; the
  // failure set by Fail (not for flush markers). Push/PushMany hand over
  // requests whose places are reserved and must follow a successful Reserve.
  Status Reserve(bool flush_marker, size_t places = 1);
  void Push(PendingAppend&& p);
  void PushMany(std::vector<PendingAppend>* ps);  // in order, under one lock; leaves *ps empty

  // Writer side (one thread). Replaces *batch with the next batch: it waits
  // for a first request (until `idle_until`, if given), then for up to
  // max_batch_delay from the oldest one while the batch is not full, and
  // takes at most max_batch_requests and max_batch_bytes (a single request
  // larger than that goes alone). *batch is empty when `idle_until` passed
  // with nothing queued. False, with *batch empty, once the queue is closed
  // and every reserved request has been taken: the writer is done.
  bool TakeBatch(std::vector<PendingAppend>* batch,
                 std::optional<std::chrono::steady_clock::time_point> idle_until);

  // Refuses new reservations and wakes everyone; false if it was closed
  // already. Requests reserved before still reach the writer.
  bool Close();
  // After a hard commit failure: Reserve fails with `s` from now on (flush
  // markers excepted, so Flush still returns).
  void Fail(Status s);
  bool failed() const { return failed_.load(); }
  Status failure();  // the status given to Fail (OK if none)

 private:
  // One request pushed while another thread held mu_: a node of the
  // lock-free overflow stack.
  struct Node {
    PendingAppend p;
    Node* next = nullptr;
  };
  static constexpr uint64_t kClosed = uint64_t{1} << 63;

  void QueueLocked(PendingAppend&& p);  // dates it and appends it to queue_
  bool WakeWriterLocked();              // true: notify queue_cv_ once mu_ is released
  void DrainOverflowLocked();           // moves the overflow stack to queue_
  // Sleeps (under mu_) until `reserved` requests are queued, `deadline`
  // passes or the queue closes.
  void WaitForQueuedLocked(std::unique_lock<std::mutex>& lock, uint64_t reserved,
                           std::optional<std::chrono::steady_clock::time_point> deadline);
  bool ClosedNow() const { return (reserved_.load() & kClosed) != 0; }

  const uint64_t max_queued_requests_, max_batch_requests_, max_batch_bytes_;
  const std::chrono::microseconds max_batch_delay_;

  // Laid out for the append path: one cache line of atomics, one of the
  // mutex and the vector it guards.
  // kClosed | requests reserved and not yet taken into a batch.
  alignas(64) std::atomic<uint64_t> reserved_{0};
  std::atomic<Node*> overflow_{nullptr};  // newest first
  // The writer sleeps until reserved_ reaches this (UINT64_MAX: awake).
  std::atomic<uint64_t> writer_wake_at_{UINT64_MAX};
  size_t queued_bytes_ = 0;           // sum of queue_[i].bytes (under mu_)
  std::atomic<int> space_waiters_{0};  // appenders waiting for room
  std::atomic<bool> failed_{false};   // failure_ is set
  bool writer_wake_ = false;          // an appender woke the writer (under mu_)
  alignas(64) std::mutex mu_;
  std::vector<PendingAppend> queue_;  // a vector: the writer usually takes it whole (swap)
  std::condition_variable queue_cv_, space_cv_;
  Status failure_;  // under mu_
};

}  // namespace rill
