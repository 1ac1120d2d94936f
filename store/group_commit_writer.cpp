// The GroupCommitWriter: one thread owns log writes. Appenders queue requests;
// the writer takes up to max_batch_requests (or max_batch_bytes), or whatever
// came within max_batch_delay of the oldest, writes them in one transaction
// with MDB_APPEND (key order: one page touched per ~30 events), checks each
// request's expected version against the stream heads, commits (one fsync in
// sync mode) and then completes every request. A request that conflicts fails
// alone; the rest of its batch commits.
#include <fmt/format.h>

#include <pthread.h>

#include <algorithm>
#include <iterator>
#include <thread>
#include <unordered_map>

#include "store/event_store_impl.h"

namespace rill {

Status StoreImpl::Validate(const AppendRequest& r, bool system, size_t* bytes) const {
  RILL_RETURN_IF_ERROR(ValidateStreamName(r.stream, system));
  if (r.events.empty()) return Status::InvalidArgument(fmt::format("append to {} has no events", r.stream));
  // Empty: the append has no request id.
  switch (r.request_id.empty() ? RequestIdFault::kNone : FindRequestIdFault(r.request_id)) {
    case RequestIdFault::kNone:
    case RequestIdFault::kEmpty: break;
    case RequestIdFault::kTooLong:
      return Status::InvalidArgument(
          fmt::format("id is {} bytes; the limit is {}", r.request_id.size(), kMaxRequestIdBytes));
    case RequestIdFault::kNotUtf8: return Status::InvalidArgument("id is not valid UTF-8");
    case RequestIdFault::kControlCharacter: return Status::InvalidArgument("id contains a control character");
  }
  size_t total = 0;
  for (const auto& e : r.events) {
    RILL_RETURN_IF_ERROR(ValidateTypeName(e.type));
    if (!system && e.type[0] == '$')
      return Status::InvalidArgument(fmt::format("event type '{}' starts with '$', which is reserved for the system", e.type));
    if (e.schema < 1) return Status::InvalidArgument(fmt::format("event {} has schema 0; schemas start at 1", e.type));
    size_t size = EventSizeBytes(e);
    if (size > options_.max_event_bytes)
      return Status::InvalidArgument(fmt::format("event {} is {} bytes; the limit is {} bytes", e.type, size,
                                                 options_.max_event_bytes));
    total += EncodedRecordSize(r.stream, e, r.request_id);
  }
  if (total > std::max(options_.max_batch_bytes, options_.max_event_bytes))
    return Status::InvalidArgument(fmt::format("append to {} is {} bytes; one request may hold at most {}", r.stream,
                                               total, std::max(options_.max_batch_bytes, options_.max_event_bytes)));
  *bytes = total;
  return Status::OK();
}

// An append that will not be queued: its caller hears why, and the actor
// whose pipeline it belongs to has its later appends failed too.
static void FailAppend(AppendRequest& request, std::function<void(Result<AppendResult>)>& done, const Status& s) {
  if (request.pipeline_failed) request.pipeline_failed->store(true);
  done(s);
}

void StoreImpl::AppendAsync(AppendRequest request, std::function<void(Result<AppendResult>)> done) {
  size_t bytes = 0;
  Status v = Validate(request, false, &bytes);
  if (!v.ok()) return FailAppend(request, done, v);
  PendingAppend p;
  p.request = std::move(request);
  p.done = std::move(done);
  p.bytes = bytes;
  Enqueue(std::move(p));
}

void StoreImpl::AppendAsync(std::vector<QueuedRequest>* appends) {
  thread_local std::vector<PendingAppend> ready;  // kept: no allocation per call
  ready.clear();
  for (QueuedRequest& a : *appends) {
    size_t bytes = 0;
    Status v = Validate(a.request, false, &bytes);
    if (!v.ok()) {
      FailAppend(a.request, a.done, v);
      continue;
    }
    PendingAppend& p = ready.emplace_back();
    p.request = std::move(a.request);
    p.done = std::move(a.done);
    p.bytes = bytes;
  }
  appends->clear();
  if (ready.empty()) return;
  Status refused = Reserve(/*flush_marker=*/false, ready.size());
  if (!refused.ok()) {
    for (PendingAppend& p : ready) FailAppend(p.request, p.done, refused);
    ready.clear();
    return;
  }
  PushMany(&ready);
}

void StoreImpl::Enqueue(PendingAppend&& p) {
  Status refused = Reserve(/*flush_marker=*/false);
  if (refused.ok()) {
    Push(std::move(p));
    return;
  }
  FailAppend(p.request, p.done, refused);
}

Status StoreImpl::Reserve(bool flush_marker, size_t places) {
  if (read_only_)
    return Status::IOError(
        fmt::format("{} is on a read-only file system: the store can be read, not written", dir_));
  if (!flush_marker && writer_failed_.load()) {
    std::lock_guard lock(queue_mu_);
    return writer_fatal_;
  }
  uint64_t r = queue_reserved_.load();
  for (;;) {
    if (r & kQueueClosed) return Status::IOError("store is closing");
    if (!flush_marker && r >= options_.max_queued_requests) {
      // Back-pressure: a producer faster than the disk waits here. The
      // writer notifies after taking requests when space_waiters_ says
      // someone waits (seq_cst on both sides: it sees us, or we see room).
      space_waiters_.fetch_add(1);
      {
        std::unique_lock lock(queue_mu_);
        queue_space_cv_.wait(lock, [&] {
          r = queue_reserved_.load();
          return (r & kQueueClosed) || r < options_.max_queued_requests;
        });
      }
      space_waiters_.fetch_sub(1);
      continue;
    }
    if (queue_reserved_.compare_exchange_weak(r, r + places)) return Status::OK();
  }
}

// The batch deadline runs from the oldest queued request, and a request's
// `enqueued` only needs to be no later than when it came: a request queued
// behind another takes that one's time (no clock read), and a flush marker,
// undated, is due at once (as it always was).
static std::chrono::steady_clock::time_point QueuedSince(const std::vector<PendingAppend>& queue) {
  return queue.empty() || queue.back().flush_marker ? std::chrono::steady_clock::now() : queue.back().enqueued;
}

void StoreImpl::Push(PendingAppend&& p) {
  bool wake = false;
  if (queue_mu_.try_lock()) {
    std::lock_guard lock(queue_mu_, std::adopt_lock);
    DrainOverflowLocked();  // what this thread pushed there earlier goes first
    QueueLocked(std::move(p));
    wake = WakeWriterLocked();
  } else {
    auto* node = new QueuedAppend{std::move(p)};
    // Dated only when pushed onto an empty stack (its oldest): the rest of
    // the stack counts from that time.
    QueuedAppend* head = queue_overflow_.load(std::memory_order_relaxed);
    bool dated = false;
    do {
      if (!head && !dated) {
        node->p.enqueued = std::chrono::steady_clock::now();
        dated = true;
      }
      node->next = head;
    } while (!queue_overflow_.compare_exchange_weak(head, node));
    // seq_cst with the writer's store of writer_wake_at and its drain: it
    // sees this node, or this sees that it sleeps.
    if ((queue_reserved_.load() & ~kQueueClosed) >= writer_wake_at_.load()) {
      std::lock_guard lock(queue_mu_);
      writer_wake_ = true;
      wake = true;
    }
  }
  if (wake) queue_cv_.notify_one();
}

void StoreImpl::PushMany(std::vector<PendingAppend>* ps) {
  bool wake = false;
  {
    // Waits for the lock rather than taking the overflow stack: one wait
    // (the writer holds it for a swap) per burst, not per request.
    std::lock_guard lock(queue_mu_);
    DrainOverflowLocked();
    for (PendingAppend& p : *ps) QueueLocked(std::move(p));
    wake = WakeWriterLocked();
  }
  ps->clear();
  if (wake) queue_cv_.notify_one();
}

void StoreImpl::QueueLocked(PendingAppend&& p) {
  p.enqueued = p.flush_marker ? std::chrono::steady_clock::time_point{} : QueuedSince(queue_);
  queued_bytes_ += p.bytes;
  queue_.push_back(std::move(p));
}

// Wake the writer only when it sleeps waiting for what is now queued.
bool StoreImpl::WakeWriterLocked() {
  if ((queue_reserved_.load() & ~kQueueClosed) < writer_wake_at_.load()) return false;
  writer_wake_ = true;
  return true;
}

void StoreImpl::DrainOverflowLocked() {
  if (!queue_overflow_.load()) return;  // seq_cst: see Push
  QueuedAppend* stack = queue_overflow_.exchange(nullptr);
  // Reverse it: oldest first.
  QueuedAppend* first = nullptr;
  while (stack) {
    QueuedAppend* next = stack->next;
    stack->next = first;
    first = stack;
    stack = next;
  }
  const auto since = first->p.enqueued;  // pushed onto the empty stack: dated
  while (first) {
    QueuedAppend* node = first;
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

bool StoreImpl::CloseQueue() {
  if (queue_reserved_.fetch_or(kQueueClosed) & kQueueClosed) return false;
  { std::lock_guard lock(queue_mu_); }  // each sleeper has checked or is waiting
  queue_cv_.notify_all();
  queue_space_cv_.notify_all();
  return true;
}

void StoreImpl::WaitForQueuedLocked(std::unique_lock<std::mutex>& lock, uint64_t reserved,
                                    std::optional<std::chrono::steady_clock::time_point> deadline) {
  // seq_cst: an appender that pushes after this store sees it and wakes us;
  // one that pushed onto the overflow stack before it is drained below.
  writer_wake_at_.store(reserved);
  DrainOverflowLocked();
  auto woken = [&] { return writer_wake_ || (queue_reserved_.load() & kQueueClosed); };
  if (queue_.size() < reserved && !woken()) {
    if (deadline) queue_cv_.wait_until(lock, *deadline, woken);
    else queue_cv_.wait(lock, woken);
  }
  writer_wake_ = false;
  writer_wake_at_.store(UINT64_MAX);
  DrainOverflowLocked();
}

void StoreImpl::StopCompleter() {
  {
    std::lock_guard lock(completer_mu_);
    completer_stop_ = true;  // it finishes the batch it holds first
  }
  completer_cv_.notify_all();
  if (completer_thread_.joinable()) completer_thread_.join();
}

void StoreImpl::WriterLoop() {
  last_sync_ = std::chrono::steady_clock::now();
  const bool async = options_.durability == Durability::kAsync;
  size_t current = 0;  // the write_scratch_ the completer does not hold
  auto closing = [&] { return (queue_reserved_.load() & kQueueClosed) != 0; };
  for (;;) {
    WriteScratch& sc = write_scratch_[current];
    std::vector<PendingAppend>& batch = sc.batch;
    batch.clear();
    {
      std::unique_lock lock(queue_mu_);
      DrainOverflowLocked();
      if (queue_.empty()) {
        if (closing()) {
          // Done once every reserved request is written; one reserved but
          // not pushed yet is on its way.
          if ((queue_reserved_.load() & ~kQueueClosed) == 0) break;
          lock.unlock();
          std::this_thread::yield();
          continue;
        }
        WaitForQueuedLocked(
            lock, 1,
            async ? std::optional(std::chrono::steady_clock::now() + options_.async_flush_interval) : std::nullopt);
      }
      if (!queue_.empty()) {
        auto deadline = queue_.front().enqueued + options_.max_batch_delay;
        auto full = [&] {
          return queue_.size() >= options_.max_batch_requests || queued_bytes_ >= options_.max_batch_bytes;
        };
        while (!closing() && !full() && std::chrono::steady_clock::now() < deadline)
          WaitForQueuedLocked(lock, options_.max_batch_requests, deadline);
        if (queue_.size() <= options_.max_batch_requests && queued_bytes_ <= options_.max_batch_bytes) {
          // The usual case: everything queued fits one batch. Swapping hands
          // the queue over without moving requests and gives the appenders
          // back the last batch's (cleared) buffer.
          batch.swap(queue_);
          queued_bytes_ = 0;
        } else {
          size_t bytes = 0, n = 0;
          while (n < queue_.size() && n < options_.max_batch_requests &&
                 (n == 0 || bytes + queue_[n].bytes <= options_.max_batch_bytes)) {
            bytes += queue_[n].bytes;
            ++n;
          }
          // Take it whole and give back what does not fit, which then comes
          // first in the queue (one move per left-over request, none for the
          // batch, instead of one per batch request and one per left-over).
          batch.swap(queue_);
          queue_.insert(queue_.end(), std::make_move_iterator(batch.begin() + n),
                        std::make_move_iterator(batch.end()));
          batch.erase(batch.begin() + n, batch.end());
          queued_bytes_ -= bytes;
        }
      }
    }
    if (!batch.empty()) {
      queue_reserved_.fetch_sub(batch.size());
      if (space_waiters_.load() > 0) {
        { std::lock_guard lock(queue_mu_); }  // each waiter has checked or is waiting
        queue_space_cv_.notify_all();
      }
      // The indexer must keep up, or the in-memory tail would grow unbounded.
      {
        std::unique_lock lock(tail_.mu);
        size_t limit = std::max<size_t>(4 * options_.index_batch_events, 1 << 20);
        if (tail_.size() > limit) {
          lock.unlock();
          {
            std::lock_guard il(index_mu_);
            index_wanted_ = true;
          }
          index_cv_.notify_all();
          lock.lock();
          indexed_cv_.wait_for(lock, std::chrono::seconds(5), [&] { return tail_.size() <= limit; });
        }
      }
      if (!writer_failed_.load()) {
        WriteBatch(sc);
        // WriteBatch sets writer_fatal_ (on this thread) before the batch is
        // completed; appenders read writer_failed_ instead of taking a lock.
        if (!writer_fatal_.ok()) writer_failed_.store(true);
        HandOver(sc);
        current ^= 1;
      } else {
        // After a hard commit failure nothing more is written: requests
        // that were queued before Reserve saw the flag fail as later ones do.
        WaitForCompleter();  // callbacks run in batch order
        for (auto& p : batch)
          if (p.request.pipeline_failed && !p.flush_marker) p.request.pipeline_failed->store(true);
        for (auto& p : batch)
          if (p.done) p.done(p.flush_marker ? Status::OK() : writer_fatal_);
      }
    }
    if (async && std::chrono::steady_clock::now() - last_sync_ >= options_.async_flush_interval) {
      (void)log_env_->Sync(true);
      last_sync_ = std::chrono::steady_clock::now();
    }
  }
  StopCompleter();
}

void StoreImpl::WaitForCompleter() {
  std::unique_lock lock(completer_mu_);
  completer_cv_.wait(lock, [&] { return completer_batch_ == nullptr; });
}

void StoreImpl::HandOver(WriteScratch& sc) {
  WaitForCompleter();
  {
    std::lock_guard lock(tail_.mu);
    own_pending_ = own_commit_;  // {} unless committed
    own_commit_ = OwnCommit{};
  }
  pending_ids_.clear();
  // A small batch costs less to complete here than to hand over (see
  // StoreOptions::complete_inline_below).
  if (sc.batch.size() < options_.complete_inline_below) {
    CompleteBatch(sc);
    return;
  }
  if (sc.committed) pending_ids_.swap(batch_ids_);
  {
    std::lock_guard lock(completer_mu_);
    completer_batch_ = &sc;
  }
  completer_cv_.notify_all();
}

void StoreImpl::CompleterLoop() {
  pthread_setname_np(pthread_self(), "rill-completer");  // for top -H, perf and the benches
  for (;;) {
    WriteScratch* sc;
    {
      std::unique_lock lock(completer_mu_);
      completer_cv_.wait(lock, [&] { return completer_batch_ || completer_stop_; });
      if (!completer_batch_) return;
      sc = completer_batch_;
    }
    CompleteBatch(*sc);
    {
      std::lock_guard lock(completer_mu_);
      completer_batch_ = nullptr;
    }
    completer_cv_.notify_all();
  }
}

// Loads the heads of `streams` (writer-cache entries not yet loaded) and the
// stored outcomes of `request_ids`, as of now: the tail overlaid on one index
// read transaction, opened under the tail lock (the indexer trims the tail
// only after committing, so nothing is missed).
Status StoreImpl::LookupForWrite(const std::vector<std::pair<const std::string*, WriterHead*>>& streams,
                                 const std::vector<const std::string*>& request_ids,
                                 std::unordered_map<std::string, std::optional<RequestRecord>>* requests) {
  LmdbEnv::ReadTxn txn;
  std::vector<std::pair<const std::string*, WriterHead*>> need_index;
  std::vector<const std::string*> need_index_ids;
  {
    std::lock_guard lock(tail_.mu);
    for (auto [name, head] : streams) {
      head->version = head->position = 0;
      head->deleted = false;
      auto t = tail_.streams.find(*name);
      if (t != tail_.streams.end()) {
        if (!t->second.entries.empty()) {
          head->version = t->second.entries.back().first;
          head->position = t->second.entries.back().second;
        }
        if (t->second.deleted) head->deleted = *t->second.deleted;
      }
      // Events in the tail are newer than anything indexed, and no event
      // follows a tombstone: the index has nothing to add for such a stream.
      if (t == tail_.streams.end() || t->second.entries.empty()) need_index.emplace_back(name, head);
    }
    for (const std::string* id : request_ids) {
      auto [it, fresh] = requests->try_emplace(*id);
      if (!fresh) continue;
      if (auto t = tail_.requests.find(*id); t != tail_.requests.end()) it->second = t->second;
      else need_index_ids.push_back(id);
    }
    RILL_RETURN_IF_ERROR(index_env_->BeginRead(&txn));
  }
  for (auto [name, head] : need_index) {
    MDB_val k = Val(*name), v;
    int rc = mdb_get(txn.get(), streams_db_, &k, &v);
    if (rc == MDB_NOTFOUND) continue;
    RILL_RETURN_IF_ERROR(LmdbStatus(rc, "reading stream heads"));
    StreamRecord r;
    if (!StreamRecord::Decode(View(v), &r)) return Status::Corruption(fmt::format("stream record of {} is damaged", *name));
    if (r.head_version > head->version) {
      head->version = r.head_version;
      head->position = r.head_position;
    }
    head->deleted = head->deleted || r.deleted;
  }
  for (const std::string* id : need_index_ids) {
    MDB_val k = Val(*id), v;
    int rc = mdb_get(txn.get(), commands_db_, &k, &v);
    if (rc == MDB_NOTFOUND) continue;
    RILL_RETURN_IF_ERROR(LmdbStatus(rc, "reading request ids"));
    RequestRecord r;
    if (!RequestRecord::Decode(*id, View(v), &r)) return Status::Corruption(fmt::format("request record {} is damaged", *id));
    (*requests)[*id] = r;
  }
  for (auto [name, head] : streams) head->loaded = true;
  return Status::OK();
}

static std::string ConflictMessage(const std::string& stream, const ExpectedVersion& e, uint64_t actual) {
  std::string have = actual == 0 ? "it has no events" : fmt::format("it is at version {}", actual);
  switch (e.kind) {
    case ExpectedVersion::kNoStream: return fmt::format("stream {}: expected no stream but {}", stream, have);
    case ExpectedVersion::kExists: return fmt::format("stream {}: expected it to exist but {}", stream, have);
    default: return fmt::format("stream {}: expected version {} but {}", stream, e.version, have);
  }
}

void StoreImpl::WriteBatch(WriteScratch& sc) {
  std::vector<PendingAppend>& batch = sc.batch;
  auto& outcomes = sc.outcomes;
  outcomes.clear();
  outcomes.resize(batch.size());
  auto& writes = sc.writes;
  writes.assign(batch.size(), 0);
  auto& hashes = sc.hashes;
  hashes.assign(batch.size(), 0);
  auto& heads = sc.heads;
  heads.assign(batch.size(), {});
  auto& touched = touched_;
  touched.clear();
  // Each name hashed once, starting to load its head table slot meanwhile.
  auto& name_hashes = sc.name_hashes;
  name_hashes.assign(batch.size(), {});
  bool any_pipelined = false;
  for (size_t i = 0; i < batch.size(); ++i) {
    const auto& p = batch[i];
    if (p.flush_marker) continue;
    if (p.request.pipeline_failed) any_pipelined = true;
    name_hashes[i].first = WriterHeadTable::Hash(p.request.stream);
    writer_heads_.PrefetchSlot(name_hashes[i].first);
    if (p.system) {
      name_hashes[i].second = WriterHeadTable::Hash(p.check_stream);
      writer_heads_.PrefetchSlot(name_hashes[i].second);
    }
  }

  Status s = log_env_->Write([&](MDB_txn* txn) -> Status {
    for (auto& o : outcomes) o.reset();
    std::fill(writes.begin(), writes.end(), 0);
    // Another process may have appended since we last looked; we hold the
    // write lock, so this view is final for the transaction. (Skipping this
    // probe when the last write transaction was our own, by mdb_txn_id, cost
    // kill_append appends that failed with MDB_KEYEXIST after other writers
    // were killed: LMDB's transaction numbers are not a safe proof that the
    // log is unchanged.)
    RILL_RETURN_IF_ERROR(CatchUpTailIn(txn));
    Result<uint64_t> last = LastLogPositionIn(txn);
    if (!last.ok()) return last.status();
    uint64_t next = *last + 1;
    // Stream heads come from the writer's cache; the streams it has not seen
    // (or forgot) and every request id are looked up at once: one tail lock,
    // one index read transaction.
    const uint64_t attempt = ++write_attempts_;
    touched.clear();
    bool drop_heads;
    {
      std::lock_guard lock(tail_.mu);
      drop_heads = tail_.foreign_events != writer_heads_foreign_ || writer_heads_.size() > kMaxWriterHeads;
    }
    if (drop_heads) {
      WaitForCompleter();  // it holds heads of the last batch
      std::lock_guard lock(tail_.mu);
      tail_.UnlinkWriterLocked();
      writer_heads_.Clear();
      writer_heads_foreign_ = tail_.foreign_events;
    }
    auto& ids = batch_ids_;
    ids.clear();
    std::unordered_map<std::string, std::optional<RequestRecord>> stored_ids;
    {
      std::vector<std::pair<const std::string*, WriterHead*>> load;
      std::vector<const std::string*> reqs;
      auto find = [&](const std::string& name, uint64_t hash) {
        auto [key, h] = writer_heads_.Find(name, hash);
        if (!h->loaded && h->load_attempt != attempt) {
          h->load_attempt = attempt;  // listed once
          load.emplace_back(key, h);
        }
        return h;
      };
      // Looks up request i while the entries of the requests kAhead further
      // on are on their way into the cache.
      constexpr size_t kAhead = 32;
      for (size_t i = 0; i < batch.size() + kAhead; ++i) {
        if (i < batch.size() && !batch[i].flush_marker) {
          writer_heads_.PrefetchEntry(name_hashes[i].first);
          if (batch[i].system) writer_heads_.PrefetchEntry(name_hashes[i].second);
        }
        if (i < kAhead) continue;
        size_t j = i - kAhead;
        auto& p = batch[j];
        if (p.flush_marker) continue;
        heads[j].first = find(p.request.stream, name_hashes[j].first);
        heads[j].second = p.system ? find(p.check_stream, name_hashes[j].second) : heads[j].first;
        if (!p.request.request_id.empty()) reqs.push_back(&p.request.request_id);
      }
      if (!load.empty() || !reqs.empty()) RILL_RETURN_IF_ERROR(LookupForWrite(load, reqs, &stored_ids));
    }
    // The transaction's working copy of a head, taken from the committed
    // values the first time this attempt touches it.
    auto work = [&](WriterHead* h) -> WriterHead* {
      if (h->work_attempt != attempt) {
        h->work_attempt = attempt;
        h->work_version = h->version;
        h->work_position = h->position;
        h->work_deleted = h->deleted;
        touched.push_back(h);
      }
      return h;
    };
    MDB_cursor* cur;
    RILL_RETURN_IF_ERROR(log_env_->Check(mdb_cursor_open(txn, log_db_, &cur), "cursor"));
    Status inner;
    // Pipelines broken earlier in this attempt (flags are set once the
    // outcome is final, below).
    std::vector<const std::atomic<bool>*> broken;
    auto pipeline_broken = [&](const std::atomic<bool>* f) {
      return f && (f->load() || std::find(broken.begin(), broken.end(), f) != broken.end());
    };
    const int64_t now = NowMicros();  // one time for the batch: it commits as one
    const uint64_t batch_first = next;
    Uuid last_id;
    for (size_t i = 0; i < batch.size() && inner.ok(); ++i) {
      auto& p = batch[i];
      if (p.flush_marker) continue;
      auto& r = p.request;
      if (pipeline_broken(r.pipeline_failed)) {
        outcomes[i] = Status::Conflict(fmt::format(
            "stream {}: an earlier request of the same pipeline was not written, so this one was not either",
            r.stream));
        continue;
      }
      // Whatever happens to this request below, unless it is written as sent
      // the requests queued after it in its pipeline must not be.
      struct MarkUnlessWritten {
        std::vector<const std::atomic<bool>*>& broken;
        const std::atomic<bool>* flag;
        const char& written;
        ~MarkUnlessWritten() {
          if (flag && !written) broken.push_back(flag);
        }
      } mark{broken, r.pipeline_failed, writes[i]};
      // The fingerprint only matters for dedupe: skip it without an id.
      uint64_t hash = r.request_id.empty() ? 0 : r.request_hash ? r.request_hash : HashRequest(r);
      if (!r.request_id.empty()) {
        std::optional<RequestRecord> prev;
        if (auto bi = ids.find(r.request_id); bi != ids.end()) prev = bi->second;
        else if (auto pi = pending_ids_.find(r.request_id); pi != pending_ids_.end()) prev = pi->second;
        else prev = stored_ids[r.request_id];
        if (prev) {
          if (prev->hash == hash) {
            AppendResult res = prev->outcome;
            res.duplicate = true;
            outcomes[i] = res;
          } else {
            outcomes[i] = Status::Conflict(fmt::format(
                "id {} was already used for a different request (stream {}, version {})", r.request_id,
                prev->outcome.stream, prev->outcome.last_version));
          }
          continue;
        }
      }
      const std::string& checked = p.system ? p.check_stream : r.stream;
      WriterHead* check_head = work(heads[i].second);
      if (check_head->work_deleted) {
        outcomes[i] = Status::Conflict(fmt::format("stream {} is deleted", checked));
        continue;
      }
      uint64_t actual = check_head->work_version;
      bool ok = true;
      switch (r.expected.kind) {
        case ExpectedVersion::kAny: break;
        case ExpectedVersion::kNoStream: ok = actual == 0; break;
        case ExpectedVersion::kExists: ok = actual > 0; break;
        case ExpectedVersion::kExact: ok = actual == r.expected.version; break;
      }
      if (!ok) {
        outcomes[i] = Status::Conflict(ConflictMessage(checked, r.expected, actual));
        continue;
      }
      WriterHead* head = work(heads[i].first);
      AppendResult res;
      res.stream = r.stream;
      res.first_version = head->work_version + 1;
      res.first_position = next;
      for (auto& e : r.events) {
        uint64_t version = ++head->work_version;
        uint64_t position = next++;
        char key[8];
        PutBigEndian64(key, position);
        MDB_val k = Val(key, 8), v{EncodedRecordSize(r.stream, e, r.request_id), nullptr};
        inner = log_env_->Check(mdb_cursor_put(cur, &k, &v, MDB_APPEND | MDB_RESERVE), "appending to the log");
        if (!inner.ok()) break;
        last_id = e.id ? *e.id : Uuid::Generate();
        EncodeRecordTo(static_cast<char*>(v.mv_data), position, version, r.stream, e, last_id,
                       e.time_us ? *e.time_us : now, r.request_id, hash);
        head->work_position = position;
      }
      res.last_version = head->work_version;
      res.last_position = next - 1;
      res.events = r.events.size();
      if (p.system) {
        if (r.events[0].type == kDeleteType) check_head->work_deleted = true;
      }
      writes[i] = p.system || !r.request_id.empty() || IsMetaStream(r.stream) ? 1 : 2;
      hashes[i] = hash;
      if (!r.request_id.empty()) ids[r.request_id] = RequestRecord{hash, res};
      outcomes[i] = std::move(res);
    }
    mdb_cursor_close(cur);
    if (inner.ok() && next > batch_first) {
      std::lock_guard lock(tail_.mu);
      own_commit_ = OwnCommit{batch_first, next - 1, last_id};
    }
    return inner;
  });

  if (s.ok()) {
    if (options_.fault_hook) (void)options_.fault_hook("committed");
    for (WriterHead* h : touched) {
      h->version = h->work_version;
      h->position = h->work_position;
      h->deleted = h->work_deleted;
    }
    batches_.fetch_add(1);
    batched_requests_.fetch_add(batch.size());
  } else {
    {
      std::lock_guard lock(tail_.mu);
      own_commit_ = OwnCommit{};
    }
    Status failed = s.WithContext("the batch was not written");
    if (log_env_->last_commit_failed_hard()) {
      // Retrying an fsync can report success over lost pages: stop writing.
      std::lock_guard lock(queue_mu_);
      writer_fatal_ = Status::IOError("the log writer stopped after a failed commit (" + s.message() +
                                      "); reopen the store");
    }
    for (size_t i = 0; i < batch.size(); ++i)
      if (!outcomes[i] || writes[i]) outcomes[i] = failed;
  }
  // (A pass of its own only when the batch has pipelined requests: at 8,000
  // requests a pass over the batch is a few cache misses each.)
  for (size_t i = 0; any_pipelined && i < batch.size(); ++i) {
    auto& p = batch[i];
    if (p.request.pipeline_failed && !p.flush_marker && (!s.ok() || !writes[i]))
      p.request.pipeline_failed->store(true);  // before any done: later requests see it
  }
  sc.committed = s.ok();
}

// The tail learns what is acknowledged before any callback runs, so a read
// after an acknowledgement finds the event.
void StoreImpl::CompleteBatch(WriteScratch& sc) {
  std::vector<PendingAppend>& batch = sc.batch;
  auto& outcomes = sc.outcomes;
  const auto& writes = sc.writes;
  const auto& hashes = sc.hashes;
  const auto& heads = sc.heads;
  if (options_.fault_hook) (void)options_.fault_hook("complete");
  if (sc.committed) {
    bool want_index;
    {
      std::lock_guard lock(tail_.mu);
      // What the tail needs of each event, from the requests themselves; for
      // the plain ones (writes 2) of a stream already in the tail, only the
      // positions: no name to read, no request to touch. The entries are
      // fetched ahead of use in steps (the head's link, the tail entry, the
      // end of its list): at 64k streams each is a cache miss, and one after
      // another they were most of the writer's time here.
      constexpr size_t kAhead = 8;
      auto tail_of = [&](size_t i) { return writes[i] ? heads[i].first->tail : nullptr; };
      for (size_t i = 0; i < batch.size(); ++i) {
        if (i + 3 * kAhead < batch.size() && writes[i + 3 * kAhead])
          __builtin_prefetch(&heads[i + 3 * kAhead].first->tail);
        if (i + 2 * kAhead < batch.size())
          if (auto* node = tail_of(i + 2 * kAhead)) __builtin_prefetch(&node->second.entries);
        if (i + kAhead < batch.size())
          if (auto* node = tail_of(i + kAhead))
            __builtin_prefetch(node->second.entries.v.data() + node->second.entries.v.size());
        if (!writes[i]) continue;
        const AppendResult& res = outcomes[i]->value();
        if (writes[i] == 2 && heads[i].first->tail) {
          for (uint64_t j = 0; j < res.events; ++j)
            tail_.AddLinkedLocked(heads[i].first->tail, res.first_version + j, res.first_position + j);
          continue;
        }
        const auto& r = batch[i].request;
        for (size_t j = 0; j < r.events.size(); ++j) {
          RecordView rv{};
          rv.position = res.first_position + j;
          rv.version = res.first_version + j;
          rv.request_hash = hashes[i];
          rv.stream = r.stream;
          rv.type = r.events[j].type;
          rv.request_id = r.request_id;
          rv.data = r.events[j].data;
          tail_.AddLocked(rv, /*own_writer=*/true, heads[i].first);
        }
      }
      want_index = tail_.size() >= options_.index_batch_events;
      own_pending_ = OwnCommit{};
    }
    commit_cv_.notify_all();
    if (want_index) {
      {
        std::lock_guard il(index_mu_);
        index_wanted_ = true;
      }
      index_cv_.notify_all();
    }
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    auto& p = batch[i];
    if (!p.done) continue;
    if (p.flush_marker) p.done(Status::OK());
    else p.done(std::move(*outcomes[i]));
  }
  batch.clear();  // the requests' memory is freed here, off the writer
}

static Status SystemAppend(StoreImpl* store, const std::string& stream, ExpectedVersion expected,
                           const char* type, std::string data,
                           const std::function<void(PendingAppend)>& enqueue) {
  RILL_RETURN_IF_ERROR(ValidateStreamName(stream));
  auto promise = std::make_shared<std::promise<Result<AppendResult>>>();
  auto future = promise->get_future();
  PendingAppend p;
  p.system = true;
  p.check_stream = stream;
  p.request.stream = "$$" + stream;
  p.request.expected = expected;
  NewEvent e;
  e.type = type;
  e.data = std::move(data);
  p.request.events.push_back(std::move(e));
  p.bytes = 128;
  p.done = [promise](Result<AppendResult> r) { promise->set_value(std::move(r)); };
  (void)store;
  enqueue(std::move(p));
  return future.get().status();
}

Status StoreImpl::DeleteStream(const std::string& stream, ExpectedVersion expected) {
  auto head = GetStream(stream);
  if (!head.ok()) return head.status();
  if (head->head_version == 0) return Status::NotFound(fmt::format("stream {} does not exist", stream));
  return SystemAppend(this, stream, expected, kDeleteType, "{}", [this](PendingAppend p) { Enqueue(std::move(p)); });
}

Status StoreImpl::SetStreamMetadata(const std::string& stream, const StreamMetadata& metadata) {
  return SystemAppend(this, stream, ExpectedVersion::Any(), kMetadataType, MetadataToJson(metadata),
                      [this](PendingAppend p) { Enqueue(std::move(p)); });
}

Status StoreImpl::RewriteEvents(const std::vector<Event>& events) {
  for (const auto& e : events) {
    RILL_RETURN_IF_ERROR(ValidateTypeName(e.type));
    if (e.schema < 1) return Status::InvalidArgument("schema must be at least 1");
    if (EventSizeBytes(e) > options_.max_event_bytes)
      return Status::InvalidArgument(fmt::format("rewritten event at position {} is too large", e.position));
  }
  std::string buf;
  return log_env_->Write([&](MDB_txn* txn) -> Status {
    for (const auto& e : events) {
      char key[8];
      PutBigEndian64(key, e.position);
      MDB_val k = Val(key, 8), v;
      int rc = mdb_get(txn, log_db_, &k, &v);
      if (rc == MDB_NOTFOUND) return Status::NotFound(fmt::format("no event at position {}", e.position));
      RILL_RETURN_IF_ERROR(log_env_->Check(rc, "reading the log"));
      RecordView old;
      RILL_RETURN_IF_ERROR(DecodeRecord(View(v), &old));
      Event updated = ToEvent(old);
      updated.type = e.type;
      updated.schema = e.schema;
      updated.data = e.data;
      updated.meta = e.meta;
      buf.clear();
      EncodeEvent(updated, old.request_hash, &buf);
      MDB_val nv = Val(buf);
      RILL_RETURN_IF_ERROR(log_env_->Check(mdb_put(txn, log_db_, &k, &nv, 0), "rewriting the log"));
    }
    return Status::OK();
  });
}

}  // namespace rill
