#include "store/internal/append_queue.h"

#include <iterator>
#include <thread>

namespace rill {

AppendQueue::AppendQueue(const StoreOptions& options)
    : max_queued_requests_(options.max_queued_requests),
      max_batch_requests_(options.max_batch_requests),
      max_batch_bytes_(options.max_batch_bytes),
      max_batch_delay_(options.max_batch_delay) {}

AppendQueue::~AppendQueue() {
  // Requests still on the overflow stack were never taken: their callers
  // are not waiting on a writer that has stopped, but their memory is ours.
  for (Node* n = overflow_.exchange(nullptr); n;) {
    Node* next = n->next;
    delete n;
    n = next;
  }
}

Status AppendQueue::Reserve(bool flush_marker, size_t places) {
  if (!flush_marker && failed_.load()) {
    std::lock_guard lock(mu_);
    return failure_;
  }
  uint64_t r = reserved_.load();
  for (;;) {
    if (r & kClosed) return Status::IOError("store is closing");
    if (!flush_marker && r >= max_queued_requests_) {
      // Back-pressure: a producer faster than the disk waits here. The
      // writer notifies after taking requests when space_waiters_ says
      // someone waits (seq_cst on both sides: it sees us, or we see room).
      space_waiters_.fetch_add(1);
      {
        std::unique_lock lock(mu_);
        space_cv_.wait(lock, [&] {
          r = reserved_.load();
          return (r & kClosed) || r < max_queued_requests_;
        });
      }
      space_waiters_.fetch_sub(1);
      continue;
    }
    if (reserved_.compare_exchange_weak(r, r + places)) return Status::OK();
  }
}

// The batch deadline runs from the oldest queued request, and a request's
// `enqueued` only needs to be no later than when it came: a request queued
// behind another takes that one's time (no clock read), and a flush marker,
// undated, is due at once.
static std::chrono::steady_clock::time_point QueuedSince(const std::vector<PendingAppend>& queue) {
  return queue.empty() || queue.back().flush_marker ? std::chrono::steady_clock::now() : queue.back().enqueued;
}

void AppendQueue::Push(PendingAppend&& p) {
  bool wake = false;
  if (mu_.try_lock()) {
    std::lock_guard lock(mu_, std::adopt_lock);
    DrainOverflowLocked();  // what this thread pushed there earlier goes first
    QueueLocked(std::move(p));
    wake = WakeWriterLocked();
  } else {
    auto* node = new Node{std::move(p)};
    // Dated only when pushed onto an empty stack (its oldest): the rest of
    // the stack counts from that time.
    Node* head = overflow_.load(std::memory_order_relaxed);
    bool dated = false;
    do {
      if (!head && !dated) {
        node->p.enqueued = std::chrono::steady_clock::now();
        dated = true;
      }
      node->next = head;
    } while (!overflow_.compare_exchange_weak(head, node));
    // seq_cst with the writer's store of writer_wake_at_ and its drain: it
    // sees this node, or this sees that it sleeps.
    if ((reserved_.load() & ~kClosed) >= writer_wake_at_.load()) {
      std::lock_guard lock(mu_);
      writer_wake_ = true;
      wake = true;
    }
  }
  if (wake) queue_cv_.notify_one();
}

void AppendQueue::PushMany(std::vector<PendingAppend>* ps) {
  bool wake = false;
  {
    // Waits for the lock rather than taking the overflow stack: one wait
    // (the writer holds it for a swap) per burst, not per request.
    std::lock_guard lock(mu_);
    DrainOverflowLocked();
    for (PendingAppend& p : *ps) QueueLocked(std::move(p));
    wake = WakeWriterLocked();
  }
  ps->clear();
  if (wake) queue_cv_.notify_one();
}

void AppendQueue::QueueLocked(PendingAppend&& p) {
  p.enqueued = p.flush_marker ? std::chrono::steady_clock::time_point{} : QueuedSince(queue_);
  queued_bytes_ += p.bytes;
  queue_.push_back(std::move(p));
}

// Wake the writer only when it sleeps waiting for what is now queued.
bool AppendQueue::WakeWriterLocked() {
  if ((reserved_.load() & ~kClosed) < writer_wake_at_.load()) return false;
  writer_wake_ = true;
  return true;
}

void AppendQueue::DrainOverflowLocked() {
  if (!overflow_.load()) return;  // seq_cst: see Push
  Node* stack = overflow_.exchange(nullptr);
  // Reverse it: oldest first.
  Node* first = nullptr;
  while (stack) {
    Node* next = stack->next;
    stack->next = first;
    first = stack;
    stack = next;
  }
  const auto since = first->p.enqueued;  // pushed onto the empty stack: dated
  while (first) {
    Node* node = first;
    first = node->next;
    PendingAppend& p = node->p;
    p.enqueued = p.flush_marker                                  ? std::chrono::steady_clock::time_point{}
                 : queue_.empty() || queue_.back().flush_marker ? since
                                                                : queue_.back().enqueued;
    queued_bytes_ += p.bytes;
    queue_.push_back(std::move(p));
    delete node;
  }
}

bool AppendQueue::Close() {
  if (reserved_.fetch_or(kClosed) & kClosed) return false;
  { std::lock_guard lock(mu_); }  // each sleeper has checked or is waiting
  queue_cv_.notify_all();
  space_cv_.notify_all();
  return true;
}

void AppendQueue::Fail(Status s) {
  {
    std::lock_guard lock(mu_);
    failure_ = std::move(s);
  }
  failed_.store(true);
}

Status AppendQueue::failure() {
  std::lock_guard lock(mu_);
  return failure_;
}

void AppendQueue::WaitForQueuedLocked(std::unique_lock<std::mutex>& lock, uint64_t reserved,
                                      std::optional<std::chrono::steady_clock::time_point> deadline) {
  // seq_cst: an appender that pushes after this store sees it and wakes us;
  // one that pushed onto the overflow stack before it is drained below.
  writer_wake_at_.store(reserved);
  DrainOverflowLocked();
  auto woken = [&] { return writer_wake_ || ClosedNow(); };
  if (queue_.size() < reserved && !woken()) {
    if (deadline) queue_cv_.wait_until(lock, *deadline, woken);
    else queue_cv_.wait(lock, woken);
  }
  writer_wake_ = false;
  writer_wake_at_.store(UINT64_MAX);
  DrainOverflowLocked();
}

bool AppendQueue::TakeBatch(std::vector<PendingAppend>* batch,
                            std::optional<std::chrono::steady_clock::time_point> idle_until) {
  batch->clear();
  {
    std::unique_lock lock(mu_);
    DrainOverflowLocked();
    while (queue_.empty() && ClosedNow()) {
      // Done once every reserved request is taken; one reserved but not
      // pushed yet is on its way.
      if ((reserved_.load() & ~kClosed) == 0) return false;
      lock.unlock();
      std::this_thread::yield();
      lock.lock();
      DrainOverflowLocked();
    }
    if (queue_.empty()) WaitForQueuedLocked(lock, 1, idle_until);
    if (queue_.empty()) return true;
    auto deadline = queue_.front().enqueued + max_batch_delay_;
    auto full = [&] { return queue_.size() >= max_batch_requests_ || queued_bytes_ >= max_batch_bytes_; };
    while (!ClosedNow() && !full() && std::chrono::steady_clock::now() < deadline)
      WaitForQueuedLocked(lock, max_batch_requests_, deadline);
    if (queue_.size() <= max_batch_requests_ && queued_bytes_ <= max_batch_bytes_) {
      // The usual case: everything queued fits one batch. Swapping hands
      // the queue over without moving requests and gives the appenders
      // back the last batch's (cleared) buffer.
      batch->swap(queue_);
      queued_bytes_ = 0;
    } else {
      size_t bytes = 0, n = 0;
      while (n < queue_.size() && n < max_batch_requests_ &&
             (n == 0 || bytes + queue_[n].bytes <= max_batch_bytes_)) {
        bytes += queue_[n].bytes;
        ++n;
      }
      // Take it whole and give back what does not fit, which then comes
      // first in the queue (one move per left-over request, none for the
      // batch, instead of one per batch request and one per left-over).
      batch->swap(queue_);
      queue_.insert(queue_.end(), std::make_move_iterator(batch->begin() + n), std::make_move_iterator(batch->end()));
      batch->erase(batch->begin() + n, batch->end());
      queued_bytes_ -= bytes;
    }
  }
  reserved_.fetch_sub(batch->size());
  if (space_waiters_.load() > 0) {
    { std::lock_guard lock(mu_); }  // each waiter has checked or is waiting
    space_cv_.notify_all();
  }
  return true;
}

}  // namespace rill
