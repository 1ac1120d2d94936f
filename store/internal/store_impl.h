// StoreImpl: the one EventStore implementation (private to store/).
// event_store.cpp: open, reads, checkpoints, snapshots, operations.
// group_commit_writer.cpp: the writer thread and the write-side API.
// stream_indexer.cpp: the indexer thread, index rebuild and check.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <mutex>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "store/event_store.h"
#include "store/internal/append_queue.h"
#include "store/internal/lmdb_env.h"
#include "store/internal/lmdb_log.h"
#include "store/internal/record.h"
#include "store/internal/store_internal.h"
#include "util/open_table.h"
#include "util/prefetch.h"
#include "util/stable_vector.h"

namespace rill {

// The writer's stream heads by name (see WriterHead): an OpenTable of 8-byte
// slots (a 32-bit tag of the name's hash and the entry's number) into
// entries in a StableVector, so a WriterHead never moves: the tail and the
// batch in flight hold pointers to them. A std::unordered_map<std::string,
// WriterHead> cost the writer ~0.2 us per request at 64k streams in cache
// misses (bucket, node, the node's cached hash); here a lookup touches one
// slot and one entry, and the writer prefetches both for requests ahead of
// the one it looks up (Prefetch*), so the misses of a batch overlap.
class WriterHeadTable {
 public:
  static uint64_t Hash(std::string_view name) { return std::hash<std::string_view>{}(name); }
  size_t size() const { return entries_.size(); }
  // Starts loading the slot `hash` probes first.
  void PrefetchSlot(uint64_t hash) const { slots_.PrefetchHome(hash); }
  // Starts loading the entry the first slot with `hash`'s tag names (best
  // after PrefetchSlot, some requests earlier).
  void PrefetchEntry(uint64_t hash) const {
    if (const Slots::Slot* s = slots_.Find(hash, [&](const Slots::Slot& s) { return s.tag == Tag(hash); }))
      Prefetch(&entries_[s->ref - 1]);
  }
  // The entry of `name` (hash == Hash(name)), added (with a fresh head) if
  // absent. The name stays put as long as the entry.
  std::pair<const std::string*, WriterHead*> Find(std::string_view name, uint64_t hash) {
    slots_.MakeRoom([&](const Slots::Slot& s) { return Hash(entries_[s.ref - 1].name); });
    Slots::Slot& s = slots_.FindOrEmpty(
        hash, [&](const Slots::Slot& s) { return s.tag == Tag(hash) && entries_[s.ref - 1].name == name; });
    if (!s.empty()) {
      Entry& e = entries_[s.ref - 1];
      return {&e.name, &e.head};
    }
    Entry& e = entries_.Append();
    e.name.assign(name);
    slots_.Put(s, Tag(hash), static_cast<uint32_t>(entries_.size()));
    return {&e.name, &e.head};
  }
  // Forgets every entry (the caller has unlinked the tail from them first).
  void Clear() {
    entries_.clear();
    slots_.Clear();
  }

 private:
  struct Entry {
    std::string name;
    WriterHead head;
  };
  static uint32_t Tag(uint64_t hash) { return static_cast<uint32_t>(hash >> 32); }
  using Slots = OpenTable<uint32_t, uint32_t>;  // tag, entry index + 1
  Slots slots_;
  StableVector<Entry, 1024> entries_;
};

// IndexOnce's working tables, kept from one batch to the next so a batch of
// tens of thousands of streams re-uses its memory instead of allocating (and
// page-faulting) it again. Only one thread indexes at a time (the indexer
// thread, or the open/repair path while it is not running).
struct IndexScratch {
  // A name's first 16 bytes as two big-endian words (zero-padded) and its
  // size: equal keys of names of at most 16 bytes mean equal names, and keys
  // order like the names they start, so hashing, comparing and sorting touch
  // the name itself (in a log page, a cache miss away) only past 16 bytes.
  struct NameKey {
    uint64_t hi = 0, lo = 0;
    uint32_t size = 0;
    static NameKey Of(std::string_view name);
    bool SamePrefix(const NameKey& o) const { return hi == o.hi && lo == o.lo && size == o.size; }
  };
  // Open addressing from names to indexes into a vector of entries that hold
  // them: a node per name in a std::unordered_map cost a malloc and cache
  // misses each.
  class NameTable {
   public:
    // The index of the entry named `name`, or `next` once added (the caller
    // then appends that entry). name_of(i) is the name of entry i.
    template <class NameOf>
    uint32_t Find(std::string_view name, const NameKey& key, uint32_t next, const NameOf& name_of) {
      slots_.MakeRoom([&](const Slots::Slot& s) { return Hash(s.tag, name_of(s.ref - 1)); });
      Slots::Slot& slot = slots_.FindOrEmpty(Hash(key, name), [&](const Slots::Slot& s) {
        return s.tag.SamePrefix(key) && (key.size <= 16 || name_of(s.ref - 1) == name);
      });
      if (!slot.empty()) return slot.ref - 1;
      slots_.Put(slot, key, next + 1);
      return next;
    }
    // A batch from the tail never fills the table (see ScanTail): Clear does
    // not sweep tens of MB of empty slots for it.
    void Clear() { slots_.Clear(); }

   private:
    static size_t Hash(const NameKey& k, std::string_view name);
    using Slots = OpenTable<NameKey, uint32_t>;  // key, entry index + 1
    Slots slots_;
  };

  // One stream the batch touches (its events, or a $$ event aimed at it).
  // Two cache lines: a batch holds up to millions, walked in three orders,
  // so every byte here is paid for in misses. Its NameKey is in stream_keys
  // and its $metadata in stream_metadata, beside it.
  struct alignas(64) Stream {
    std::string_view name;  // into the log read transaction's pages, or the tail's stream map
    uint64_t first_touch = 0;  // position of the batch event that first named it
    uint64_t first_event = 0;  // position of its first event in the batch (0: none)
    uint64_t first_version = 0, last_version = 0, last_position = 0;
    uint32_t events = 0;
    bool meta = false;  // a $$ stream
    bool set_deleted = false;
    bool stored = false;  // found in `streams`; record holds it (then updated)
    // The batch's last valid $metadata is stream_metadata[metadata_slot - 1]
    // (0: none).
    uint32_t metadata_slot = 0;
    StreamRecord record;
  };
  std::vector<Stream> streams;
  static_assert(sizeof(Stream) == 128);
  std::vector<NameKey> stream_keys;  // per stream, same index
  std::vector<StreamMetadata> stream_metadata;  // see Stream::metadata_slot
  NameTable stream_table;
  // One request id in the batch: the outcome of its first run of consecutive
  // events here (its record in `commands`, unless one is stored already).
  struct Request {
    std::string_view id, stream;  // into the log read transaction's pages, the tail, or tail_ids
    NameKey key;
    uint64_t hash, first_version, last_version, first_position, last_position, events;
  };
  std::vector<Request> requests;
  NameTable request_table;
  // Sort keys kept side by side, so sorting does not chase into `streams`
  // (or `requests`): index is the entry's place there.
  struct SortKey {
    uint64_t hi, lo;
    uint32_t index;
  };
  std::vector<SortKey> sorted;
  std::vector<uint32_t> event_stream;  // per batch event: its index in streams
  // A batch taken from the in-memory tail (see StoreImpl::ScanTail): per
  // event, how many of its stream's batch events come before it (its
  // version is known once the stream's stored head is read), and the events
  // that carry a request id, with the ids copied out of the tail.
  std::vector<uint32_t> event_rank;
  struct TailRequestEvent {
    uint64_t position, hash;
    std::string_view id;  // into tail_ids
  };
  std::vector<TailRequestEvent> tail_requests;
  std::deque<std::string> tail_ids;  // a deque: adding never moves the strings
  std::vector<UnindexedTail::Ref> refs;
  std::vector<uint64_t> meta_events;  // positions of a tail batch's $$ events (ScanTail)
  uint64_t batch_number = 0;  // counts ScanTail calls; see UnindexedTailStream::index_batch
  std::vector<uint32_t> cursor;        // per stream: next slot in `positions`
  std::vector<uint64_t> positions;     // the batch's positions grouped by stream

  void Clear() {
    streams.clear();
    stream_keys.clear();
    stream_metadata.clear();
    stream_table.Clear();
    requests.clear();
    request_table.Clear();
    event_stream.clear();
    event_rank.clear();
    tail_requests.clear();
    tail_ids.clear();
    refs.clear();
    meta_events.clear();
  }
  // The index of `name` in streams, added (first touched at `position`) if
  // new; an earlier `position` than the stream's first touch becomes it.
  uint32_t FindStream(std::string_view name, uint64_t position);
  // Adds a stream the batch has not named yet, without the name table (a
  // batch from the tail knows its streams by their tail entries). The table
  // is filled from `streams` by IndexStreamNames before FindStream is used.
  uint32_t AddNewStream(std::string_view name, const NameKey& key, uint64_t position);
  void IndexStreamNames();
  // Applies a "$$<stream>" event ($delete, $metadata) to its target stream.
  void AddSystemEvent(const RecordView& rv);
  // Folds one event that carries a request id into `requests`. A request's
  // events are consecutive: its first run in the batch is its outcome
  // (merged with a stored one when written).
  void AddRequestEvent(std::string_view id, std::string_view stream, uint64_t hash, uint64_t version,
                       uint64_t position);
};

class StoreImpl final : public EventStore {
 public:
  StoreImpl(std::string dir, StoreOptions options);
  ~StoreImpl() override;

  Status OpenLog(bool fresh);
  Status OpenIndex();
  // Starts the completer, writer and indexer threads; an error (and none
  // left running) if one cannot be started.
  Status Start();
  void Stop();

  // EventStore
  void AppendAsync(AppendRequest request, std::function<void(Result<AppendResult>)> done) override;
  void AppendAsync(std::vector<QueuedRequest>* appends) override;
  using EventStore::AppendAsync;
  Status DeleteStream(const std::string& stream, ExpectedVersion expected) override;
  Status SetStreamMetadata(const std::string& stream, const StreamMetadata& metadata) override;
  Result<StreamInfo> GetStream(const std::string& stream) override;
  Status ReadStream(const std::string& stream, Direction dir, uint64_t from, size_t max_count,
                    std::vector<Event>* out, const ReadOptions& options) override;
  using EventStore::ReadStream;
  Status ReadAsStored(Event event, std::vector<Event>* out) override;
  Status ReadAll(uint64_t from, size_t max_count, std::vector<Event>* out, bool raw) override;
  Status ListStreams(const std::string& category, std::vector<StreamInfo>* out, bool include_system) override;
  uint64_t LastPosition() override;
  std::unique_ptr<Subscription> Subscribe(uint64_t after_position, bool raw) override;
  Result<AppendResult> LookupRequest(const std::string& request_id) override;
  Result<uint64_t> GetCheckpoint(const std::string& name) override;
  Status SetCheckpoint(const std::string& name, uint64_t position) override;
  Status ListCheckpoints(std::vector<std::pair<std::string, uint64_t>>* out) override;
  Result<Snapshot> GetSnapshot(const std::string& stream) override;
  Status PutSnapshot(const std::string& stream, const Snapshot& snapshot) override;
  Status DeleteSnapshot(const std::string& stream) override;
  Status ListSnapshots(std::vector<std::pair<std::string, Snapshot>>* out) override;
  Status Check(CheckReport* report, bool repair,
               const std::function<void(uint64_t, uint64_t)>& progress) override;
  Status Backup(const std::string& dest, const BackupOptions& options) override;
  StoreStats Stats() override;
  Status WaitIndexed(uint64_t position) override;
  Status Flush() override;
  Status RewriteEvents(const std::vector<Event>& events) override;
  const std::string& dir() const override { return dir_; }
  const std::string& store_id() const override { return store_id_; }

  void WaitForCommit(uint64_t after, std::chrono::steady_clock::time_point until);

 private:
  Status OpenIndexEnv();
  Status DropIndex();
  Result<uint64_t> ReadIndexedPosition();
  // Reads fail as errors, never as position 0 (which at open would read as
  // "index ahead of the log" and throw a good index away).
  Result<uint64_t> IndexedIn(MDB_txn* index_txn);
  // The number the next stream new to the index gets (1 in a fresh index).
  Result<uint64_t> NextStreamNumberIn(MDB_txn* index_txn);
  Result<uint64_t> LastLogPosition();
  Result<uint64_t> LastLogPositionIn(MDB_txn* log_txn);
  Status CatchUpTail();
  // Reads what the log holds past the tail's known end into the tail (the
  // writer calls it inside its batch, on the batch's own view of the log).
  Status CatchUpTailIn(LogReader& log);
  Result<StreamInfo> StreamHead(const std::string& stream, StreamRecord* index_record);
  Result<RequestRecord> FindRequest(const std::string& id);
  Status LookupForWrite(const std::vector<std::pair<const std::string*, WriterHead*>>& streams,
                        const std::vector<const std::string*>& request_ids,
                        std::unordered_map<std::string, std::optional<RequestRecord>>* requests);
  Status FetchRecord(MDB_txn* log_txn, uint64_t position, Event* out);
  Status Transform(Event& e);
  // Non-raw delivery of one stored event: read_expand or read_transform.
  // Appends what readers see to *out (parts reversed when !forward); *added
  // says how many.
  Status Deliver(Event&& e, bool forward, std::vector<Event>* out, size_t* added);
  Status Validate(const AppendRequest& r, bool system, size_t* bytes) const;
  // Reserves a place and pushes `p`, or fails it (its done, its pipeline).
  void Enqueue(PendingAppend&& p);
  // queue_.Reserve, or why a store on a read-only file system takes no write.
  Status Reserve(bool flush_marker, size_t places = 1);

  // Writer
  struct WriteScratch;
  void WriterLoop();
  // Writes sc.batch in one transaction; on return the writer's heads and
  // pipeline flags are final and sc holds what CompleteBatch needs.
  void WriteBatch(WriteScratch& sc);
  // WriteBatch's steps. Before the requests: forget the head cache if
  // another writer touched the log (or it grew too big), then find each
  // request's heads, loading those not cached and the stored outcomes of the
  // batch's request ids in one lookup.
  void ForgetStaleHeads();
  using StoredIds = std::unordered_map<std::string, std::optional<RequestRecord>>;
  Status FindHeads(WriteScratch& sc, uint64_t attempt, StoredIds* stored_ids);
  // Then, per request, until one decides its outcome: its request id seen
  // before (the earlier outcome as a duplicate, or a conflict if it came with
  // another request); its expected version against the checked head; and
  // the append of its events at *next on, through the log.
  std::optional<Result<AppendResult>> Dedupe(const AppendRequest& r, uint64_t hash, StoredIds& stored_ids);
  static Status CheckExpectedVersion(const PendingAppend& p, const WriterHead& checked);
  Result<AppendResult> AppendEvents(LogAppender& log, const AppendRequest& r, uint64_t hash, int64_t now,
                                    WriterHead* head, uint64_t* next, Uuid* last_id);
  // Completer: records a written batch in the tail, then runs its callbacks.
  void CompleteBatch(WriteScratch& sc);
  void CompleterLoop();
  // Writer: hands sc to the completer once it has finished the previous
  // batch; WaitForCompleter waits for that alone.
  void HandOver(WriteScratch& sc);
  void WaitForCompleter();
  // Indexer
  void IndexerLoop();
  // Indexes up to max_events log entries after the index's mark; returns how
  // many it indexed. Trims the tail.
  Result<uint64_t> IndexOnce(uint64_t max_events);
  // Step 1 of IndexOnce from the in-memory tail instead of the log, when the
  // tail holds position `from`: up to max_events events grouped by stream in
  // index_scratch_, *done set. False (nothing done) when it does not.
  Result<bool> ScanTail(uint64_t from, uint64_t max_events, MDB_txn* log_txn, uint64_t* done);

  std::string dir_;
  StoreOptions options_;
  Env* env_;  // options_.env, or Env::Default()
  std::string store_id_;
  // The store's file system is mounted read-only: both environments open
  // MDB_RDONLY | MDB_NOLOCK, no writer or indexer runs, the index is not
  // caught up (reads past it come from the tail, built from the log), and
  // every write fails with one clear line.
  bool read_only_ = false;
  std::unique_ptr<LmdbEnv> log_env_, index_env_;
  std::unique_ptr<LmdbLog> log_;  // the writer's batches go through it (LogBackend)
  MDB_dbi log_db_ = 0, meta_db_ = 0, checkpoints_db_ = 0;
  MDB_dbi streams_db_ = 0, stream_index_db_ = 0, commands_db_ = 0, snapshots_db_ = 0, indexed_db_ = 0;

  UnindexedTail tail_;
  // This process's writer's batches that are in the log (or being committed)
  // but not yet in the tail, under tail_.mu: positions [first, last] and the
  // event id at `last` (0: none). own_commit_ is the batch being committed;
  // own_pending_ the committed one the completer is adding to the tail. A
  // reader's CatchUpTailIn that finds exactly them at the log's end leaves
  // them alone, and the indexer does not read them from the log. Counting
  // them foreign instead made the writer drop its whole head cache whenever
  // an actor's activation read raced a commit (at 1M streams, every such race
  // cost ~1M head reloads). The id check makes it exact: after a failed
  // commit another process's records at those positions carry other ids.
  struct OwnCommit {
    uint64_t first = 0, last = 0;
    Uuid last_id;
  };
  OwnCommit own_commit_, own_pending_;
  // The first log position of this process's own batches not yet in the
  // tail (0: none); caller holds tail_.mu.
  uint64_t OwnUnlistedLocked() const {
    if (own_pending_.first) return own_pending_.first;
    return own_commit_.first;
  }
  std::condition_variable commit_cv_;   // with tail_.mu: the log grew
  std::condition_variable indexed_cv_;  // with tail_.mu: the index advanced

  AppendQueue queue_{options_};
  std::thread writer_thread_;
  std::atomic<uint64_t> batches_{0}, batched_requests_{0};
  std::chrono::steady_clock::time_point last_sync_;
  // Writer thread only: stream heads it knows (see WriterHead). Dropped when
  // tail_.foreign_events says another writer touched the log, and when it
  // grows past kMaxWriterHeads. Each head costs ~100 bytes, plus its tail
  // entry kept while linked (~200): 4M streams stay cached in ~1.2 GB. The
  // flash sale's 2M SKUs must fit: past the cap every batch re-read most
  // heads from `streams` (B-tree searches were a third of the writer).
  static constexpr size_t kMaxWriterHeads = size_t{1} << 22;
  WriterHeadTable writer_heads_;
  uint64_t writer_heads_foreign_ = 0;
  uint64_t write_attempts_ = 0;
  // One batch on its way through the writer and then the completer, with
  // WriteBatch's per-request arrays. Two, kept between batches: the writer
  // fills one while the completer works through the other. (Allocated
  // afresh, an 8,000-request batch's ~1 MB went back to the OS on free and
  // came back as zeroed huge pages: ~5% of the writer.)
  // What a batch did with one of its requests, for the completer.
  enum class RequestWrite : uint8_t {
    kNotWritten,     // failed, a duplicate, or a flush marker
    kWritten,        // the tail needs its names, request id or system event
    kPositionsOnly,  // written, and the tail needs nothing of it but its positions
  };
  struct WriteScratch {
    std::vector<PendingAppend> batch;
    bool committed = false;
    std::vector<std::optional<Result<AppendResult>>> outcomes;
    std::vector<RequestWrite> writes;  // per request
    std::vector<uint64_t> hashes;
    // Per request: its stream's head and the head its expected version is
    // checked against (differs for system appends to "$$stream").
    std::vector<std::pair<WriterHead*, WriterHead*>> heads;
    // Each request's stream name hashed once (and, for system appends, the
    // checked stream's).
    std::vector<std::pair<uint64_t, uint64_t>> name_hashes;
  } write_scratch_[2];
  std::vector<WriterHead*> touched_;  // heads the current attempt changed
  std::unordered_map<std::string, RequestRecord> batch_ids_;  // request ids the current attempt wrote
  // Request ids of the batch the completer holds: not in the tail yet, so
  // the next batch's dedupe looks here first.
  std::unordered_map<std::string, RequestRecord> pending_ids_;
  // The completer thread (started by Start, stopped and joined by the
  // writer as it ends, or by Start when the writer cannot start). The writer
  // waits for it to finish one batch before handing it the next, so it
  // trails by at most one batch and the WriterHead pointers it holds stay
  // valid (the writer waits for it before dropping its head cache).
  std::thread completer_thread_;
  void StopCompleter();
  std::mutex completer_mu_;
  std::condition_variable completer_cv_;
  WriteScratch* completer_batch_ = nullptr;  // handed over, not yet completed
  bool completer_stop_ = false;

  std::mutex index_mu_;
  std::condition_variable index_cv_;
  bool index_stop_ = false, index_wanted_ = false;
  Status index_error_;
  std::thread indexer_thread_;
  std::atomic<uint64_t> index_rebuilds_{0};
  IndexScratch index_scratch_;
};

}  // namespace rill
