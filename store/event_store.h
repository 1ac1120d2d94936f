// EventStore: the durable event log on LMDB and everything derived from it.
//
// A store directory holds two LMDB environments (see docs/design.md, "Store format"):
//   log/    durable, fsync per batch, written only in key order (MDB_APPEND):
//           log (position -> record), meta, checkpoints
//   index/  derived, never fsync'd, rebuilt from the log when stale/damaged:
//           streams, stream_index, commands, snapshots, indexed
// One group-commit writer thread owns log writes; one indexer thread keeps
// index/ behind the log in large sorted batches (store/internal/ holds them;
// docs/design.md, "Write path" and "Index"). Events after the index's
// high-water mark are held in memory (the "tail"), so reads never miss an
// acknowledged event. Other processes may open the same store: whoever takes
// LMDB's write lock first catches up on the log entries others added.
//
// Thread safety: every method may be called from any thread. Callbacks given
// to AppendAsync run on one of the store's own threads (the writer, or the
// completer that acknowledges batches while the writer writes the next) and
// must not block: every later acknowledgement waits for them.
// An EventStore must not cross fork().
//
// Errors (Status codes, store/status.h), as every call below may return them
// unless its comment says otherwise:
//   IOError     the disk: ENOSPC, EIO, EACCES, a failed fsync (after which the
//               writer stops: every later append fails until the store is
//               reopened), a read-only file system for any write, "store is
//               closing" during destruction
//   Corruption  a record whose CRC, position or version does not check out,
//               a damaged LMDB page; reads stop there, Check says where
// Each call lists the codes particular to it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "store/env.h"
#include "store/event.h"
#include "store/limits.h"
#include "store/status.h"

namespace rill {

enum class Durability {
  kSync,   // fsync every batch before acknowledging (default)
  kAsync,  // acknowledge after the write, fsync every async_flush_interval;
           // a power loss (not a process crash) may drop acknowledged events
};

struct StoreOptions {
  bool create_if_missing = false;
  Durability durability = Durability::kSync;
  // Group commit: a batch closes at this many requests, this many bytes, or
  // when the oldest request has waited this long, whichever comes first.
  size_t max_batch_requests = 8192;
  size_t max_batch_bytes = 32u << 20;
  std::chrono::microseconds max_batch_delay{500};
  // Back-pressure: AppendAsync blocks while this many requests are queued.
  size_t max_queued_requests = 65536;
  // One event's data + meta + type may not exceed this; refused up front so an
  // oversized event never sinks the batch it would have joined.
  size_t max_event_bytes = kDefaultMaxEventBytes;
  // Initial LMDB map size of each environment; it grows by itself when full.
  size_t initial_map_bytes = 256u << 20;
  std::chrono::milliseconds async_flush_interval{200};
  // The indexer runs when this many events are unindexed, or every interval
  // once appends pause (while they keep coming, every 100 intervals at most).
  // A batch costs about the index pages it touches (LMDB copies each page it
  // writes), and over many streams that is most pages of the index whatever
  // the batch size, so the bigger the batch, the less it costs per event.
  // What waits meanwhile is the in-memory tail (~50 bytes per event), the
  // batch's scratch (~200 bytes per stream it touches) and, after a crash,
  // re-indexing the tail from the log: that bounds the size (see
  // docs/streams-and-versions.md, "How the index is kept").
  size_t index_batch_events = 4000000;
  std::chrono::milliseconds index_interval{50};
  // A committed batch of at least this many requests is recorded in the tail
  // and acknowledged by the completer thread while the writer writes the
  // next one; a smaller one by the writer itself, where waking the completer
  // costs more than the overlap saves (a lone appender's small batches leave
  // the writer little to overlap, and it waits for every acknowledgement).
  // 0: every batch goes through the completer (so that holding the completer
  // holds every acknowledgement).
  size_t complete_inline_below = 512;
  // The clock (event times, max-age), the fsyncs of backups, and the fault
  // points of the write path (store/env.h). nullptr: Env::Default(). It must
  // outlive the store.
  Env* env = nullptr;
  // Applied to every event handed out by ReadStream, ReadAll and
  // subscriptions unless the read is raw, so that one hook (an upcaster)
  // makes every read path see events at their current schema. It may change
  // type, schema, data and meta; it must be thread-safe.
  std::function<Status(Event& event)> read_transform;
  // The one-to-many form of read_transform (used instead of it when set): the
  // stored `event` is read as zero or more events appended to *out, all with
  // its position and version (the store numbers them: Event::part/parts, and
  // reverses them on backward reads). Zero means the event was folded into a
  // neighbour (an upcaster's merge). `read_stored` reads the raw stored event
  // of a stream at a version (NotFound when there is none), for hooks that
  // look at neighbours. Every non-raw read path goes through it: ReadStream,
  // ReadAll and subscriptions. The parts of one stored event always arrive
  // in the same call, so a consumer checkpointing at a delivered event's
  // position after handling a whole call never stops inside an event.
  using StoredEventReader = std::function<Status(const std::string& stream, uint64_t version, Event* out)>;
  std::function<Status(Event&& event, const StoredEventReader& read_stored, std::vector<Event>* out)> read_expand;
};

// A durable consumer position ("$all" position it has handled through).
// A pull-style catch-up subscription: history first, then live commits.
class Subscription {
 public:
  virtual ~Subscription() = default;
  // Appends up to max events after the current position to *out; waits up to
  // `wait` for new commits when there are none. Returns OK with nothing added
  // on timeout. Sees commits of other processes too (by polling the log).
  virtual Status Next(std::vector<Event>* out, size_t max, std::chrono::milliseconds wait) = 0;
  // Last position handed out.
  virtual uint64_t position() const = 0;
};

struct BackupOptions {
  // More files or trees to copy, as paths relative to the store directory:
  // the plugin files rill.conf names by store-relative paths.
  std::vector<std::string> also_copy;
  // Polled while copying (every 64 KiB at most): true stops the backup
  // (Interrupted).
  std::function<bool()> should_stop;
  // Bytes of the log and index copied so far.
  std::function<void(uint64_t bytes)> progress;
};

struct StoreStats {
  uint64_t events = 0;         // = last position
  uint64_t streams = 0;        // streams known to the index ($$ system streams too)
  uint64_t indexed_position = 0;
  uint64_t log_map_bytes = 0, log_used_bytes = 0, log_file_bytes = 0;
  uint64_t index_map_bytes = 0, index_used_bytes = 0, index_file_bytes = 0;
  uint64_t batches = 0;        // write transactions committed by this process
  uint64_t batched_requests = 0;
  uint64_t map_growths = 0;
  // Log entries this process learned of other than from its own writer:
  // other processes' appends (each such entry makes the writer re-read the
  // heads it caches). 0 while this process is the only writer.
  uint64_t foreign_events = 0;
  std::string store_id;
  uint32_t format_version = 0;
};

struct CheckReport {
  uint64_t events_checked = 0;
  uint64_t streams_checked = 0;
  std::vector<std::string> problems;  // one line each; empty means clean
  bool index_rebuilt = false;
};

struct Snapshot {
  uint64_t version = 0;       // stream version the state includes
  uint32_t state_schema = 1;  // schema of the state JSON
  std::string state;          // JSON text
};

class EventStore {
 public:
  static constexpr uint32_t kFormatVersion = 1;

  // Opens (or with create_if_missing creates) the store in `dir`. Runs
  // mdb_reader_check, catches the index up with the log, rebuilds it when it
  // is missing, damaged or ahead of the log (never for an I/O error: that is
  // returned). Errors: NotFound (no store there, and not create_if_missing);
  // InvalidArgument (an unknown format version); Corruption (a log without
  // its format mark: emptied or replaced); IOError (cannot be opened or
  // created: permissions, EMFILE, a read-only file system whose index must
  // be rebuilt).
  static Result<std::unique_ptr<EventStore>> Open(const std::string& dir, const StoreOptions& options);
  // Stops the writer and indexer after draining queued requests.
  virtual ~EventStore() = default;

  // ---- Writes ------------------------------------------------------------
  // Queues the append for the group-commit writer; `done` runs on a store
  // thread (see Thread safety above) once the batch is durable (or failed).
  // Blocks while the queue is full (back-pressure). Validation errors call
  // `done` before returning. Outcomes: the AppendResult (duplicate set when
  // the request id was seen with the same request); InvalidArgument (a bad
  // stream or type name, no events, schema 0, a '$' type, an event past
  // max_event_bytes, a request past max_batch_bytes, a bad request id);
  // Conflict (the expected version does not hold, the stream is deleted, the
  // id was used for a different request, an earlier request of the same
  // pipeline was not written); IOError (see above: the batch failed as a
  // whole, so no event of it is in the log).
  virtual void AppendAsync(AppendRequest request, std::function<void(Result<AppendResult>)> done) = 0;
  std::future<Result<AppendResult>> AppendAsync(AppendRequest request);
  // Several appends queued at once, in order, each as AppendAsync would
  // (its own callback, validation and outcome; one failing fails alone).
  // One lock and one reservation for the lot instead of one each: the queue
  // is shared by every appender and the writer, so a caller that produces
  // appends in bursts contends for it once per burst. Back-pressure may let
  // the queue pass max_queued_requests by the size of one call. Consumes the
  // appends: *appends is empty afterwards.
  struct QueuedRequest {
    AppendRequest request;
    std::function<void(Result<AppendResult>)> done;
  };
  virtual void AppendAsync(std::vector<QueuedRequest>* appends) = 0;
  Result<AppendResult> Append(AppendRequest request);

  // Tombstones `stream` (writes a "$delete" event to "$$stream"): reads say
  // not found, appends conflict, $all still has every event. Errors:
  // NotFound (no such stream), Conflict (expected version, already deleted),
  // InvalidArgument (a bad name). Blocks until durable.
  virtual Status DeleteStream(const std::string& stream, ExpectedVersion expected) = 0;
  // Writes a "$metadata" event to "$$stream"; reads honour it from then on.
  // Errors: InvalidArgument (a bad name), Conflict (a deleted stream).
  // Blocks until durable.
  virtual Status SetStreamMetadata(const std::string& stream, const StreamMetadata& metadata) = 0;

  // ---- Reads -------------------------------------------------------------
  // Head, deletion flag and metadata. NotFound if the stream has no events
  // and no metadata.
  virtual Result<StreamInfo> GetStream(const std::string& stream) = 0;
  // Events of `stream` starting at version `from` (forward: >= from;
  // backward: <= from, 0 meaning "from the head"), at most max_count.
  // Metadata (max-count, max-age, truncate-before) hides events unless raw.
  // NotFound for a missing or deleted stream (unless raw). raw also skips
  // read_transform/read_expand: the events exactly as stored. With
  // read_expand, max_count counts stored events that yielded at least one
  // event (each with all its parts), so *out may get more than max_count.
  Status ReadStream(const std::string& stream, Direction dir, uint64_t from, size_t max_count,
                    std::vector<Event>* out, bool raw = false) {
    return ReadStream(stream, dir, from, max_count, out, ReadOptions{.raw = raw});
  }
  // ReadOptions::all_versions: every version of the stream whatever its
  // metadata, still upcast, still NotFound once deleted. For what an
  // aggregate is (activation, replay, snapshots): metadata is about what
  // readers see, and an aggregate that lost its first events would decide
  // differently than it did (docs/streams-and-versions.md).
  struct ReadOptions {
    bool raw = false;
    bool all_versions = false;
  };
  virtual Status ReadStream(const std::string& stream, Direction dir, uint64_t from, size_t max_count,
                            std::vector<Event>* out, const ReadOptions& options) = 0;
  // $all: events with position >= from, in order, at most max_count (stored
  // events; see ReadStream for read_expand). Nothing past the end is no
  // error. Errors: Corruption (a record under the wrong key or failing its
  // CRC: what came before it is in *out), the read_transform's errors.
  virtual Status ReadAll(uint64_t from, size_t max_count, std::vector<Event>* out, bool raw = false) = 0;
  // Streams in name order; category "" means all. System ($...) streams only
  // when include_system. A failed read is an error, never a shorter list.
  virtual Status ListStreams(const std::string& category, std::vector<StreamInfo>* out,
                             bool include_system = false) = 0;
  // The last position this process knows of, after a best-effort look for
  // other processes' appends (a failed look leaves the last known end).
  virtual uint64_t LastPosition() = 0;
  // Catch-up subscription starting after `after_position`.
  virtual std::unique_ptr<Subscription> Subscribe(uint64_t after_position, bool raw = false) = 0;
  // The outcome recorded for an append/command id, NotFound if none.
  virtual Result<AppendResult> LookupRequest(const std::string& request_id) = 0;
  // What a (non-raw) read would hand out for `event` were it stored: the
  // upcasters' view of an event not yet appended, so an append can be
  // checked against the domain that will read it. Usually one event.
  virtual Status ReadAsStored(Event event, std::vector<Event>* out) = 0;

  // ---- Consumer checkpoints (durable, in log/) ----------------------------
  // 0 if unset; Corruption for a value that is not 8 bytes.
  virtual Result<uint64_t> GetCheckpoint(const std::string& name) = 0;
  virtual Status SetCheckpoint(const std::string& name, uint64_t position) = 0;
  virtual Status ListCheckpoints(std::vector<std::pair<std::string, uint64_t>>* out) = 0;

  // ---- Snapshots (derived, in index/) -------------------------------------
  virtual Result<Snapshot> GetSnapshot(const std::string& stream) = 0;  // NotFound if none
  virtual Status PutSnapshot(const std::string& stream, const Snapshot& snapshot) = 0;
  virtual Status DeleteSnapshot(const std::string& stream) = 0;
  virtual Status ListSnapshots(std::vector<std::pair<std::string, Snapshot>>* out) = 0;

  // ---- Operations ---------------------------------------------------------
  // Verifies every record's CRC, position and version gaps, and that the
  // index agrees with the log. With repair, a disagreeing index is rebuilt
  // (the caller makes sure nothing else uses this EventStore meanwhile). What
  // it finds goes into report->problems, not the Status: the Status is for
  // failing to check (IOError; repair on a read-only file system). progress
  // is called on the calling thread.
  virtual Status Check(CheckReport* report, bool repair = false,
                       const std::function<void(uint64_t done, uint64_t total)>& progress = {}) = 0;
  // Consistent, compacted copy into `dest` (must not exist or be empty) while
  // writers keep running: the log, the index, the files an operator put
  // beside them (projections/, migrations/, rill.conf) and
  // options.also_copy. Every file and directory keeps its source's mode, and
  // the copy is fsynced before Backup returns. A failed or stopped backup
  // (Interrupted) removes what it wrote, and `dest` if it created it.
  virtual Status Backup(const std::string& dest, const BackupOptions& options) = 0;
  Status Backup(const std::string& dest) { return Backup(dest, BackupOptions{}); }
  virtual StoreStats Stats() = 0;
  // Blocks until the index covers `position`. Reads never need it (they
  // merge the unindexed tail); it is for measuring or inspecting the index.
  virtual Status WaitIndexed(uint64_t position) = 0;
  // Waits for every append queued before it, then fsyncs the log (async
  // mode). Errors: the fsync's IOError.
  virtual Status Flush() = 0;
  // Rewrites type, schema, data and meta of each given event in place (by
  // position), keeping position, stream, version, id, time and request id;
  // one durable transaction, so a batch of rewrites lands whole or not at
  // all. For migrating stored events to a new schema in place. Errors:
  // NotFound (no event at a position), InvalidArgument (a bad type, schema 0,
  // an event past max_event_bytes).
  virtual Status RewriteEvents(const std::vector<Event>& events) = 0;

  virtual const std::string& dir() const = 0;
  virtual const std::string& store_id() const = 0;

  // Creates an empty store in `dir`, a new or empty directory (or one that
  // holds only rill.conf, projections/, migrations/, plugins/, readmodels/):
  // Conflict if it already holds a store, FailedPrecondition if it holds
  // anything else. Its files get 0644 and its directories 0755, less the
  // umask (as git does): make a private store under umask 077.
  static Status Init(const std::string& dir);
  // True if `dir` looks like a rill store (has log/data.mdb).
  static bool Exists(const std::string& dir);
  // OK if `dir` holds a store; NotFound if it does not; IOError if that
  // cannot be told (permission denied, an I/O error on the way).
  static Status Probe(const std::string& dir);
};

// Permission bits of the store's log file: what a copy of its events
// (export -o) passes as its mode, so it is no more open than the store.
mode_t StoreFileMode(const std::string& dir);

// If fd 0, 1 or 2 is closed, the next open() would get it and a database file
// could become "stderr": fills each hole with /dev/null. Open() calls it;
// programs that open read models (readmodel/) first call it themselves.
void EnsureStdDescriptors();

// The directory of read models and registered projections inside a store.
std::string ReadModelDir(const std::string& store_dir);    // <dir>/readmodels
std::string ProjectionsDir(const std::string& store_dir);  // <dir>/projections
std::string MigrationsDir(const std::string& store_dir);   // <dir>/migrations

}  // namespace rill
