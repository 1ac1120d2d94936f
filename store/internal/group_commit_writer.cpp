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

#include "store/internal/store_impl.h"

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
  queue_.PushMany(&ready);
}

void StoreImpl::Enqueue(PendingAppend&& p) {
  Status refused = Reserve(/*flush_marker=*/false);
  if (refused.ok()) {
    queue_.Push(std::move(p));
    return;
  }
  FailAppend(p.request, p.done, refused);
}

Status StoreImpl::Reserve(bool flush_marker, size_t places) {
  if (read_only_)
    return Status::IOError(
        fmt::format("{} is on a read-only file system: the store can be read, not written", dir_));
  return queue_.Reserve(flush_marker, places);
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
  for (;;) {
    WriteScratch& sc = write_scratch_[current];
    std::vector<PendingAppend>& batch = sc.batch;
    auto idle_until = async ? std::optional(std::chrono::steady_clock::now() + options_.async_flush_interval)
                            : std::nullopt;
    if (!queue_.TakeBatch(&batch, idle_until)) break;
    if (!batch.empty()) {
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
      if (!queue_.failed()) {
        WriteBatch(sc);  // on a hard commit failure it fails the queue first
        HandOver(sc);
        current ^= 1;
      } else {
        // After a hard commit failure nothing more is written: requests
        // that were queued before Reserve saw the flag fail as later ones do.
        WaitForCompleter();  // callbacks run in batch order
        for (auto& p : batch)
          if (p.request.pipeline_failed && !p.flush_marker) p.request.pipeline_failed->store(true);
        const Status fatal = queue_.failure();
        for (auto& p : batch)
          if (p.done) p.done(p.flush_marker ? Status::OK() : fatal);
      }
    }
    if (async && std::chrono::steady_clock::now() - last_sync_ >= options_.async_flush_interval) {
      // A failed fsync may have dropped pages of acknowledged events, and
      // retrying it can report success over them: stop writing, as after a
      // failed commit, so no later acknowledgement rests on those pages.
      Status synced = log_env_->Sync(true);
      if (!synced.ok() && !queue_.failed())
        queue_.Fail(Status::IOError("the log writer stopped after a failed fsync (" + synced.message() +
                                    "); events acknowledged since the last good one may be lost; reopen the store"));
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

void StoreImpl::ForgetStaleHeads() {
  bool drop_heads;
  {
    std::lock_guard lock(tail_.mu);
    drop_heads = tail_.foreign_events != writer_heads_foreign_ || writer_heads_.size() > kMaxWriterHeads;
  }
  if (!drop_heads) return;
  WaitForCompleter();  // it holds heads of the last batch
  std::lock_guard lock(tail_.mu);
  tail_.UnlinkWriterLocked();
  writer_heads_.Clear();
  writer_heads_foreign_ = tail_.foreign_events;
}

// Stream heads come from the writer's cache; the streams it has not seen (or
// forgot) and every request id are looked up at once: one tail lock, one
// index read transaction.
Status StoreImpl::FindHeads(WriteScratch& sc, uint64_t attempt, StoredIds* stored_ids) {
  const std::vector<PendingAppend>& batch = sc.batch;
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
  // Looks up request i while the entries of the requests kAhead further on
  // are on their way into the cache.
  constexpr size_t kAhead = 32;
  for (size_t i = 0; i < batch.size() + kAhead; ++i) {
    if (i < batch.size() && !batch[i].flush_marker) {
      writer_heads_.PrefetchEntry(sc.name_hashes[i].first);
      if (batch[i].system) writer_heads_.PrefetchEntry(sc.name_hashes[i].second);
    }
    if (i < kAhead) continue;
    size_t j = i - kAhead;
    auto& p = batch[j];
    if (p.flush_marker) continue;
    sc.heads[j].first = find(p.request.stream, sc.name_hashes[j].first);
    sc.heads[j].second = p.system ? find(p.check_stream, sc.name_hashes[j].second) : sc.heads[j].first;
    if (!p.request.request_id.empty()) reqs.push_back(&p.request.request_id);
  }
  if (load.empty() && reqs.empty()) return Status::OK();
  return LookupForWrite(load, reqs, stored_ids);
}

std::optional<Result<AppendResult>> StoreImpl::Dedupe(const AppendRequest& r, uint64_t hash,
                                                      StoredIds& stored_ids) {
  if (r.request_id.empty()) return std::nullopt;
  // Newest first: this attempt's own writes, the batch the completer holds,
  // then the tail and the index.
  std::optional<RequestRecord> prev;
  if (auto bi = batch_ids_.find(r.request_id); bi != batch_ids_.end()) prev = bi->second;
  else if (auto pi = pending_ids_.find(r.request_id); pi != pending_ids_.end()) prev = pi->second;
  else prev = stored_ids[r.request_id];
  if (!prev) return std::nullopt;
  if (prev->hash == hash) {
    AppendResult res = prev->outcome;
    res.duplicate = true;
    return res;
  }
  return Status::Conflict(fmt::format("id {} was already used for a different request (stream {}, version {})",
                                      r.request_id, prev->outcome.stream, prev->outcome.last_version));
}

Status StoreImpl::CheckExpectedVersion(const PendingAppend& p, const WriterHead& checked) {
  const std::string& name = p.system ? p.check_stream : p.request.stream;
  if (checked.work_deleted) return Status::Conflict(fmt::format("stream {} is deleted", name));
  const ExpectedVersion& expected = p.request.expected;
  uint64_t actual = checked.work_version;
  bool ok = true;
  switch (expected.kind) {
    case ExpectedVersion::kAny: break;
    case ExpectedVersion::kNoStream: ok = actual == 0; break;
    case ExpectedVersion::kExists: ok = actual > 0; break;
    case ExpectedVersion::kExact: ok = actual == expected.version; break;
  }
  if (!ok) return Status::Conflict(ConflictMessage(name, expected, actual));
  return Status::OK();
}

Result<AppendResult> StoreImpl::AppendEvents(LogAppender& log, const AppendRequest& r, uint64_t hash, int64_t now,
                                             WriterHead* head, uint64_t* next, Uuid* last_id) {
  AppendResult res;
  res.stream = r.stream;
  res.first_version = head->work_version + 1;
  res.first_position = *next;
  for (auto& e : r.events) {
    uint64_t version = head->work_version + 1;
    uint64_t position = *next;
    Result<char*> room = log.Reserve(position, EncodedRecordSize(r.stream, e, r.request_id));
    if (!room.ok()) return room.status();
    *last_id = e.id ? *e.id : Uuid::Generate();
    EncodeRecordTo(*room, position, version, r.stream, e, *last_id, e.time_us ? *e.time_us : now, r.request_id, hash);
    head->work_version = version;
    head->work_position = position;
    ++*next;
  }
  res.last_version = head->work_version;
  res.last_position = *next - 1;
  res.events = r.events.size();
  return res;
}

void StoreImpl::WriteBatch(WriteScratch& sc) {
  std::vector<PendingAppend>& batch = sc.batch;
  auto& outcomes = sc.outcomes;
  outcomes.clear();
  outcomes.resize(batch.size());
  auto& writes = sc.writes;
  writes.assign(batch.size(), RequestWrite::kNotWritten);
  auto& hashes = sc.hashes;
  hashes.assign(batch.size(), 0);
  sc.heads.assign(batch.size(), {});
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

  Status s = log_->Append([&](LogAppender& log) -> Status {
    for (auto& o : outcomes) o.reset();
    std::fill(writes.begin(), writes.end(), RequestWrite::kNotWritten);
    // Another process may have appended since we last looked; we hold the
    // write lock, so this view is final for the transaction. (Skipping this
    // probe when the last write transaction was our own, by mdb_txn_id, cost
    // kill_append appends that failed with MDB_KEYEXIST after other writers
    // were killed: LMDB's transaction numbers are not a safe proof that the
    // log is unchanged.)
    RILL_RETURN_IF_ERROR(CatchUpTailIn(log));
    Result<uint64_t> last = log.LastPosition();
    if (!last.ok()) return last.status();
    uint64_t next = *last + 1;
    const uint64_t attempt = ++write_attempts_;
    touched.clear();
    ForgetStaleHeads();
    batch_ids_.clear();
    StoredIds stored_ids;
    RILL_RETURN_IF_ERROR(FindHeads(sc, attempt, &stored_ids));
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
    // Pipelines broken earlier in this attempt (flags are set once the
    // outcome is final, below).
    std::vector<const std::atomic<bool>*> broken;
    auto pipeline_broken = [&](const std::atomic<bool>* f) {
      return f && (f->load() || std::find(broken.begin(), broken.end(), f) != broken.end());
    };
    const int64_t now = env_->NowMicros();  // one time for the batch: it commits as one
    const uint64_t batch_first = next;
    Uuid last_id;
    for (size_t i = 0; i < batch.size(); ++i) {
      auto& p = batch[i];
      if (p.flush_marker) continue;
      auto& r = p.request;
      if (pipeline_broken(r.pipeline_failed)) {
        outcomes[i] = Status::Conflict(fmt::format(
            "stream {}: an earlier request of the same pipeline was not written, so this one was not either",
            r.stream));
        continue;
      }
      // The fingerprint only matters for dedupe: skip it without an id.
      uint64_t hash = r.request_id.empty() ? 0 : r.request_hash ? r.request_hash : HashRequest(r);
      std::optional<Result<AppendResult>> decided = Dedupe(r, hash, stored_ids);
      WriterHead* checked = nullptr;
      if (!decided) {
        checked = work(sc.heads[i].second);
        if (Status v = CheckExpectedVersion(p, *checked); !v.ok()) decided = std::move(v);
      }
      if (decided) {
        // Not written as sent: the requests queued after it in its
        // pipeline must not be either.
        if (r.pipeline_failed) broken.push_back(r.pipeline_failed);
        outcomes[i] = std::move(*decided);
        continue;
      }
      Result<AppendResult> res = AppendEvents(log, r, hash, now, work(sc.heads[i].first), &next, &last_id);
      if (!res.ok()) return res.status();  // the whole batch fails (below)
      if (p.system && r.events[0].type == kDeleteType) checked->work_deleted = true;
      writes[i] = p.system || !r.request_id.empty() || IsMetaStream(r.stream) ? RequestWrite::kWritten
                                                                               : RequestWrite::kPositionsOnly;
      hashes[i] = hash;
      if (!r.request_id.empty()) batch_ids_[r.request_id] = RequestRecord{hash, *res};
      outcomes[i] = std::move(res);
    }
    if (next > batch_first) {
      std::lock_guard lock(tail_.mu);
      own_commit_ = OwnCommit{batch_first, next - 1, last_id};
    }
    return Status::OK();
  });

  if (s.ok()) {
    (void)env_->AtFault(FaultPoint::kAfterLogCommit);
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
    if (log_->last_commit_failed_hard()) {
      // Retrying an fsync can report success over lost pages: stop writing.
      queue_.Fail(Status::IOError("the log writer stopped after a failed commit (" + s.message() +
                                  "); reopen the store"));
    }
    for (size_t i = 0; i < batch.size(); ++i)
      if (!outcomes[i] || writes[i] != RequestWrite::kNotWritten) outcomes[i] = failed;
  }
  // (A pass of its own only when the batch has pipelined requests: at 8,000
  // requests a pass over the batch is a few cache misses each.)
  for (size_t i = 0; any_pipelined && i < batch.size(); ++i) {
    auto& p = batch[i];
    if (p.request.pipeline_failed && !p.flush_marker && (!s.ok() || writes[i] == RequestWrite::kNotWritten))
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
  (void)env_->AtFault(FaultPoint::kBeforeComplete);
  if (sc.committed) {
    bool want_index;
    {
      std::lock_guard lock(tail_.mu);
      // What the tail needs of each event, from the requests themselves; for
      // the plain ones (kPositionsOnly) of a stream already in the tail, only the
      // positions: no name to read, no request to touch. The entries are
      // fetched ahead of use in steps (the head's link, the tail entry, the
      // end of its list): at 64k streams each is a cache miss, and one after
      // another they were most of the writer's time here.
      constexpr size_t kAhead = 8;
      auto written = [&](size_t i) { return writes[i] != RequestWrite::kNotWritten; };
      auto tail_of = [&](size_t i) { return written(i) ? heads[i].first->tail : nullptr; };
      for (size_t i = 0; i < batch.size(); ++i) {
        if (i + 3 * kAhead < batch.size() && written(i + 3 * kAhead))
          __builtin_prefetch(&heads[i + 3 * kAhead].first->tail);
        if (i + 2 * kAhead < batch.size())
          if (auto* node = tail_of(i + 2 * kAhead)) __builtin_prefetch(&node->second.entries);
        if (i + kAhead < batch.size())
          if (auto* node = tail_of(i + kAhead))
            __builtin_prefetch(node->second.entries.v.data() + node->second.entries.v.size());
        if (!written(i)) continue;
        const AppendResult& res = outcomes[i]->value();
        if (writes[i] == RequestWrite::kPositionsOnly && heads[i].first->tail) {
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
