#include "core/projection_runner.h"

#include <fcntl.h>
#include <pthread.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <mutex>
#include <thread>

#include "readmodel/read_model_store.h"
#include "store/durable_file.h"
#include "store/start_thread.h"

namespace rill {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;


// What the reader thread hands over: the events of one read that pass the
// filter, and the position the read went through (filtered-out events still
// move the checkpoint).
struct Chunk {
  std::vector<Event> events;  // in log order
  // Partitioned projections: the order to apply events in (indexes into
  // events, grouped by stream), and their positions in that order (so the
  // applying thread reads them in sequence). Empty: log order.
  std::vector<uint32_t> order;
  std::vector<uint64_t> positions;
  std::unique_ptr<DecodedEvents> decoded;  // the handler's Decode of events, if it decodes
  uint64_t through = 0;
  bool caught_up = false;  // the read reached the head
  bool end = false;        // last chunk of a catch-up (or an error)
  Status error;
};

// Reads $all on its own thread, ahead of the applying thread, through a
// bounded queue (back-pressure: it never runs more than `depth` reads ahead).
class EventPump {
 public:
  // `grouped_chunk` > 0: the projection is partitioned by stream, and each
  // chunk (up to that many events) comes with its order grouped by stream.
  EventPump(EventStore& store, const EventFilter& filter, const ProjectionHandler& handler, uint64_t after,
            bool follow, milliseconds poll, size_t grouped_chunk)
      : store_(store),
        filter_(filter),
        handler_(handler),
        after_(after),
        follow_(follow),
        poll_(poll),
        partitioned_(grouped_chunk > 0),
        target_(grouped_chunk > 0 ? grouped_chunk : kReadSize),
        // Big grouped chunks: one waiting beside the one being applied.
        depth_(grouped_chunk > 0 ? 1 : 16) {
    started_ = StartThread(&thread_, "projection reader", [this] { Loop(); });
  }
  ~EventPump() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  // Not OK if its thread could not start: then it delivers nothing.
  const Status& started() const { return started_; }
  // Gives a consumed chunk's event buffer back for reuse.
  void Recycle(std::vector<Event>&& events) {
    std::lock_guard<std::mutex> lock(mu_);
    if (spare_.size() < 2) spare_.push_back(std::move(events));
  }
  // False if nothing arrived within `wait`.
  bool Pop(Chunk* out, milliseconds wait) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, wait, [&] { return !queue_.empty(); })) return false;
    *out = std::move(queue_.front());
    queue_.pop_front();
    cv_.notify_all();
    return true;
  }

 private:
  static constexpr size_t kReadSize = 4096;
  Status started_;

  bool Push(Chunk c) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return stop_ || queue_.size() < depth_; });
    if (stop_) return false;
    queue_.push_back(std::move(c));
    cv_.notify_all();
    return true;
  }
  bool Stopped() {
    std::lock_guard<std::mutex> lock(mu_);
    return stop_;
  }

  // The order to apply `events` in: grouped by stream, each stream's events
  // in log order. Byte order of the names is SQLite's BINARY collation, the
  // order of a TEXT key. Sorts small keys (a name's first bytes, in place)
  // and leaves the events where they are: comparing or moving the events
  // themselves missed the cache at every step and cost more than the
  // statements it saved.
  static void GroupByStream(const std::vector<Event>& events, std::vector<uint32_t>* order) {
    struct Key {
      char head[20];  // the name's first bytes, zero-padded
      uint32_t index;
      uint32_t size;
    };
    std::vector<Key> keys(events.size());
    for (uint32_t i = 0; i < keys.size(); ++i) {
      const std::string& n = events[i].stream;
      Key& k = keys[i];
      std::memset(k.head, 0, sizeof k.head);
      std::memcpy(k.head, n.data(), std::min(n.size(), sizeof k.head));
      k.index = i;
      k.size = static_cast<uint32_t>(n.size());
    }
    std::sort(keys.begin(), keys.end(), [&](const Key& a, const Key& b) {
      int c = std::memcmp(a.head, b.head, sizeof a.head);
      if (c != 0) return c < 0;
      if (a.size > sizeof a.head || b.size > sizeof b.head) {
        // Same first bytes, and a longer name: compare the rest.
        c = std::string_view(events[a.index].stream).compare(events[b.index].stream);
        if (c != 0) return c < 0;
      } else if (a.size != b.size) {
        return a.size < b.size;  // zero padding ties "ab" and "ab\0"
      }
      return a.index < b.index;  // stable: log order within a stream
    });
    order->resize(keys.size());
    for (size_t i = 0; i < keys.size(); ++i) (*order)[i] = keys[i].index;
  }

  // A buffer for the next chunk: one the applying thread gave back (its
  // pages already mapped; emptied here, off the applying thread), or new.
  std::vector<Event> TakeBuffer() {
    std::vector<Event> b;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!spare_.empty()) {
        b = std::move(spare_.back());
        spare_.pop_back();
      }
    }
    b.clear();
    return b;
  }

  void Loop() {
    pthread_setname_np(pthread_self(), "rill-pump");  // for top -H and perf
    std::unique_ptr<Subscription> sub = store_.Subscribe(after_);
    bool all = filter_.categories.empty() && filter_.types.empty();
    // Grouped chunks start small and double up to target_: the applying
    // thread waits for the first one, which matters for a short catch-up.
    size_t chunk_target = partitioned_ ? std::min<size_t>(target_, 16384) : target_;
    while (!Stopped()) {
      Chunk c;
      c.events = TakeBuffer();
      c.events.reserve(chunk_target);
      bool got = false;  // a read returned events
      // Plain projections: one read per chunk. Partitioned ones: reads until
      // the chunk is full or a short read says the head is near.
      while (true) {
        size_t before = c.events.size();
        size_t want = std::min(kReadSize, chunk_target - before);
        Status s = sub->Next(&c.events, want, follow_ && !got ? poll_ : milliseconds(0));
        if (!s.ok()) {
          Chunk e;
          e.error = s;
          e.end = true;
          Push(std::move(e));
          return;
        }
        size_t n = c.events.size() - before;
        if (n == 0) break;
        got = true;
        c.through = c.events.back().position;
        // A short read means "at the head for now": commit. Only an empty
        // read ends a catch-up (a short read need not be the head).
        c.caught_up = n < want;
        if (!all) {
          auto kept = std::remove_if(c.events.begin() + static_cast<std::ptrdiff_t>(before), c.events.end(),
                                     [&](const Event& e) { return !filter_.Matches(e); });
          c.events.erase(kept, c.events.end());
        }
        if (!partitioned_ || c.caught_up || c.events.size() >= chunk_target || Stopped()) break;
      }
      if (!got) {
        if (follow_) continue;  // nothing new yet
        c.through = sub->position();
        c.caught_up = c.end = true;
        Push(std::move(c));
        return;
      }
      if (partitioned_ && c.events.size() > 1) {
        GroupByStream(c.events, &c.order);
        c.positions.reserve(c.order.size());
        for (uint32_t i : c.order) c.positions.push_back(c.events[i].position);
      }
      if (!c.events.empty()) c.decoded = handler_.Decode(c.events, c.order);
      chunk_target = std::min(target_, 2 * chunk_target);
      if (!Push(std::move(c))) return;
    }
  }

  EventStore& store_;
  const EventFilter& filter_;
  const ProjectionHandler& handler_;
  uint64_t after_;
  bool follow_;
  milliseconds poll_;
  bool partitioned_;
  size_t target_;  // events per chunk (after the filter, for grouped ones)
  size_t depth_;  // chunks queued ahead of the applying thread
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Chunk> queue_;
  std::vector<std::vector<Event>> spare_;  // buffers given back (Recycle)
  bool stop_ = false;
  std::thread thread_;
};

struct MetaRow {
  std::string name, fingerprint, store_id, updated, last_error;
  uint64_t position = 0, applied = 0;
};

Result<std::optional<MetaRow>> ReadMeta(SqliteDb& db) {
  Result<SqliteStatement> st =
      db.Prepare("SELECT name, position, applied, fingerprint, store_id, updated, last_error FROM _rill_projection");
  if (!st.ok()) return st.status().WithContext(db.path());
  Result<bool> row = st->Step();
  if (!row.ok()) return row.status().WithContext(db.path());
  if (!*row) return std::optional<MetaRow>();
  MetaRow m;
  m.name = st->ColumnText(0);
  m.position = static_cast<uint64_t>(st->ColumnInt(1));
  m.applied = static_cast<uint64_t>(st->ColumnInt(2));
  m.fingerprint = st->ColumnText(3);
  m.store_id = st->ColumnText(4);
  m.updated = st->ColumnText(5);
  m.last_error = st->ColumnText(6);
  return std::optional<MetaRow>(std::move(m));
}

void Hook(const ProjectionRunOptions& o, ProjectionPoint point, uint64_t position) {
  if (o.test_hook) o.test_hook(point, position);
}

Status StaleError(const std::string& name) {
  return Status::FailedPrecondition(fmt::format(
      "read model {} was built by another definition of the projection: run 'rill project replay {}'", name, name));
}

bool StopRequested(const ProjectionRunOptions& o) { return o.should_stop && o.should_stop(); }

Env* EnvOf(const ProjectionRunOptions& o) { return o.env ? o.env : Env::Default(); }

// Runs `projection` into the file at `path` from its checkpoint. `unsynced`
// (replay files only, see ReplayProjection): commits skip fsync.
Status RunInto(EventStore& store, const Projection& projection, const std::string& path,
               const ProjectionRunOptions& o, ProjectionProgress* progress, bool unsynced = false) {
  const std::string& name = projection.name();
  Result<std::unique_ptr<SqliteDb>> opened = SqliteDb::Open(path, SqliteMode::kReadWrite);
  if (!opened.ok()) return opened.status();
  SqliteDb& db = **opened;
  // A handler statement that runs away (a recursive CTE) must still yield
  // to a stop request; its batch rolls back with it.
  db.SetStopCheck([&o] { return StopRequested(o); });
  RILL_RETURN_IF_ERROR(db.Exec(fmt::format("PRAGMA cache_size=-{}", static_cast<int64_t>(o.cache_mb) * 1024)));
  if (unsynced) RILL_RETURN_IF_ERROR(db.Exec("PRAGMA synchronous=OFF"));

  // Open: create the checkpoint table and the projection's own, in one
  // transaction, and check the file belongs to this store and projection.
  std::unique_ptr<ProjectionHandler> handler;
  uint64_t position = 0;
  std::string fingerprint = projection.fingerprint();  // of the rows in the file
  {
    RILL_RETURN_IF_ERROR(db.BeginImmediate());
    auto fail = [&](Status s) {
      (void)db.Rollback();
      return s;
    };
    Status s = db.Exec(kCheckpointTableSchema);
    if (!s.ok()) return fail(s);
    Result<std::optional<MetaRow>> meta = ReadMeta(db);
    if (!meta.ok()) return fail(meta.status());
    if (!meta->has_value()) {
      Result<SqliteStatement> ins = db.Prepare(
          "INSERT INTO _rill_projection(name, position, applied, fingerprint, store_id, updated) "
          "VALUES (?, 0, 0, ?, ?, ?)");
      if (!ins.ok()) return fail(ins.status());
      std::string now = FormatTime(EnvOf(o)->NowMicros());
      (void)ins->BindText(1, name);
      (void)ins->BindText(2, projection.fingerprint());
      (void)ins->BindText(3, store.store_id());
      (void)ins->BindText(4, now);
      s = ins->Run();
      if (!s.ok()) return fail(s);
    } else {
      const MetaRow& m = **meta;
      if (m.name != name)
        return fail(Status::Conflict(fmt::format("{} holds read model '{}', not '{}'", path, m.name, name)));
      if (m.store_id != store.store_id())
        return fail(Status::Conflict(fmt::format(
            "{} was built from another store (id {}, this store is {}): drop it or replay it", path, m.store_id,
            store.store_id())));
      // (A replay file of another definition was discarded before this.)
      if (m.fingerprint != projection.fingerprint()) return fail(StaleError(name));
      position = m.position;
      fingerprint = m.fingerprint;
    }
    Result<std::unique_ptr<ProjectionHandler>> h = projection.Attach(db);
    if (!h.ok()) return fail(h.status().WithContext(fmt::format("projection {}", name)));
    handler = std::move(h).value();
    RILL_RETURN_IF_ERROR(db.Commit());
  }

  Result<SqliteStatement> read_pos =
      db.Prepare("SELECT position, fingerprint FROM _rill_projection WHERE name = ?");
  if (!read_pos.ok()) return read_pos.status();
  Result<SqliteStatement> write_pos = db.Prepare(
      "UPDATE _rill_projection SET position = ?, applied = applied + ?, updated = ?, last_error = NULL "
      "WHERE name = ?");
  if (!write_pos.ok()) return write_pos.status();

  ProjectionProgress local;
  ProjectionProgress& prog = progress ? *progress : local;
  prog.position = prog.start_position = position;
  prog.head = store.LastPosition();

  // Partitioned projections: chunks grouped by stream, as big as a
  // transaction may be (commits fall only between chunks).
  const size_t grouped_chunk =
      projection.partitioned_by_stream()
          ? std::max<size_t>(2, std::min<size_t>(kPartitionedChunkEvents, o.max_batch_events))
          : 0;
  auto pump = std::make_unique<EventPump>(store, projection.filter(), *handler, position, o.follow, o.follow_poll,
                                         grouped_chunk);
  RILL_RETURN_IF_ERROR(pump->started());

  // Commits the open transaction through `through`.
  auto commit = [&](uint64_t through, uint64_t applied) -> Status {
    std::string now = FormatTime(EnvOf(o)->NowMicros());
    (void)write_pos->BindInt(1, static_cast<int64_t>(through));
    (void)write_pos->BindInt(2, static_cast<int64_t>(applied));
    (void)write_pos->BindText(3, now);
    (void)write_pos->BindText(4, name);
    RILL_RETURN_IF_ERROR(write_pos->Run());
    RILL_RETURN_IF_ERROR(db.Commit());
    Hook(o, ProjectionPoint::kCommitted, through);
    return Status::OK();
  };

  // Records why the projection stopped, outside any batch transaction.
  auto record_error = [&](const std::string& message) {
    (void)db.Rollback();
    Result<SqliteStatement> st = db.Prepare("UPDATE _rill_projection SET last_error = ?, updated = ? WHERE name = ?");
    if (!st.ok()) return;
    std::string now = FormatTime(EnvOf(o)->NowMicros());
    (void)st->BindText(1, message);
    (void)st->BindText(2, now);
    (void)st->BindText(3, name);
    (void)st->Run();
  };

  milliseconds batch_time = o.max_batch_time;
  while (true) {
    if (StopRequested(o)) {
      if (o.follow) return Status::OK();
      return Status::Interrupted(fmt::format("projection {} stopped at position {} of {}", name, position, prog.head));
    }
    Chunk chunk;
    if (!pump->Pop(&chunk, milliseconds(100))) continue;
    if (!chunk.error.ok()) {
      Status s = chunk.error.WithContext(fmt::format("projection {}: reading events after {}", name, position));
      record_error(s.message());
      return s;
    }

    // Another runner on this model (a second process) can hold the write
    // lock batch after batch, outlasting SQLite's busy timeout: keep waiting
    // rather than fail, since after it commits this run only has to notice
    // the moved checkpoint below.
    Status begun = db.BeginImmediate();
    while (begun.code() == Code::kBusy && !StopRequested(o)) {
      EnvOf(o)->SleepFor(milliseconds(1));
      begun = db.BeginImmediate();
    }
    RILL_RETURN_IF_ERROR(begun);
    // Did another writer move the checkpoint (a second runner, a replay's
    // swap)? Then what the pump read is stale: resume from the file's value.
    (void)read_pos->BindText(1, name);
    Result<bool> row = read_pos->Step();
    uint64_t file_position = row.ok() && *row ? static_cast<uint64_t>(read_pos->ColumnInt(0)) : 0;
    std::string file_fingerprint = row.ok() && *row ? std::string(read_pos->ColumnText(1)) : fingerprint;
    read_pos->Reset();
    if (!row.ok()) {
      (void)db.Rollback();
      return row.status();
    }
    if (file_fingerprint != fingerprint) {
      // A replay of another definition swapped in its rows: this run's
      // statements no longer match them.
      (void)db.Rollback();
      return Status::Conflict(fmt::format(
          "read model {} was replaced by a replay of another definition of the projection; run it again", name));
    }
    if (file_position != position) {
      RILL_RETURN_IF_ERROR(db.Rollback());
      position = file_position;
      pump.reset();
      pump = std::make_unique<EventPump>(store, projection.filter(), *handler, position, o.follow, o.follow_poll,
                                         grouped_chunk);
      RILL_RETURN_IF_ERROR(pump->started());
      continue;
    }

    uint64_t through = position, applied = 0;
    auto started = Clock::now();
    bool end = false;
    const Event* failed_event = nullptr;
    Status failure;
    while (true) {
      if (!chunk.error.ok()) {
        failure = chunk.error;
        break;
      }
      const bool grouped = !chunk.order.empty();
      for (size_t k = 0; k < chunk.events.size(); ++k) {
        // Grouped, the events lie out of apply order in memory: only the
        // handler touches one (a decoding handler only when it must).
        const Event& e = chunk.events[grouped ? chunk.order[k] : k];
        const uint64_t event_position = grouped ? chunk.positions[k] : e.position;
        if (event_position <= position) continue;  // already applied (defensive)
        Status s = chunk.decoded ? handler->ApplyDecoded(e, *chunk.decoded, k) : handler->Apply(e);
        if (!s.ok()) {
          failure = s;
          failed_event = &e;
          break;
        }
        ++applied;
        Hook(o, ProjectionPoint::kApplied, event_position);
      }
      if (!failure.ok()) break;  // failed_event points into chunk: keep it
      through = std::max(through, chunk.through);
      end = chunk.end;
      bool caught_up = chunk.caught_up;
      if (end || caught_up || applied >= o.max_batch_events || StopRequested(o)) break;
      auto left = batch_time - std::chrono::duration_cast<milliseconds>(Clock::now() - started);
      if (left <= milliseconds(0)) break;
      pump->Recycle(std::move(chunk.events));
      chunk = Chunk();
      if (!pump->Pop(&chunk, left)) break;
    }

    if (!failure.ok()) {
      RILL_RETURN_IF_ERROR(db.Rollback());
      if (failure.code() == Code::kInterrupted && StopRequested(o)) {
        // A statement cut short by the stop request: not the handler's
        // fault, so no last_error and no redo; the batch is simply undone.
        if (o.follow) return Status::OK();
        return Status::Interrupted(
            fmt::format("projection {} stopped at position {} of {}", name, position, prog.head));
      }
      if (failed_event == nullptr) {
        Status out = failure.WithContext(fmt::format("projection {}: reading events after {}", name, position));
        record_error(out.message());
        return out;
      }
      Event failed = *failed_event;
      pump.reset();
      // Redo this batch's events before the failing one (read again rather
      // than kept: a replay batch can hold a million events), so the model
      // stops exactly at the last event that applied cleanly. In log order:
      // a partitioned projection applied its chunk grouped by stream, so an
      // earlier event of another stream may fail too; then that one is the
      // first failure, and the redo starts over to stop before it.
      uint64_t good = position, redo = 0;
      Status s;
      for (bool again_from_start = true; again_from_start;) {
        again_from_start = false;
        redo = 0;
        s = db.BeginImmediate();
        std::vector<Event> again;
        for (uint64_t from = position + 1; s.ok() && from < failed.position;) {
          again.clear();
          s = store.ReadAll(from, std::min<uint64_t>(4096, failed.position - from), &again);
          if (s.ok() && again.empty()) s = Status::Corruption(fmt::format("event {} vanished", from));
          for (const Event& e : again) {
            if (!s.ok() || e.position >= failed.position) break;
            if (projection.filter().Matches(e)) {
              Status a = handler->Apply(e);
              if (!a.ok() && projection.partitioned_by_stream()) {
                failure = a;
                failed = e;
                (void)db.Rollback();
                again_from_start = true;
                break;
              }
              s = a;
              ++redo;
            }
            from = e.position + 1;
          }
          if (again_from_start) break;
        }
      }
      if (s.ok()) s = commit(failed.position - 1, redo);
      if (s.ok()) {
        good = failed.position - 1;
        prog.events_applied += redo;
      } else {
        (void)db.Rollback();
      }
      Status out = Status(failure).WithContext(
          fmt::format("projection {} stopped at event position {} ({} in {}); read model kept at position {}", name,
                      failed.position, failed.type, failed.stream, good));
      prog.position = good;
      record_error(out.message());
      return out;
    }

    auto commit_started = Clock::now();
    RILL_RETURN_IF_ERROR(commit(through, applied));
    if (unsynced) {
      // A replay's commit writes every page its transaction touched, most of
      // a big model updated at random: keep commits to about a tenth of the
      // time, whatever the machine's load, by lengthening the transactions.
      auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - commit_started);
      batch_time = std::max(o.max_batch_time, 10 * took);
    }
    position = through;
    prog.position = position;
    prog.events_applied += applied;
    ++prog.transactions;
    if (prog.head < position || prog.transactions % 8 == 0 || end) prog.head = std::max(store.LastPosition(), position);
    if (o.on_commit) o.on_commit(prog);
    if (end) return Status::OK();
    pump->Recycle(std::move(chunk.events));
  }
}

bool FileExists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec);
}

// This boot of the machine: the kernel draws a new random id at each boot.
// "" where there is none (not Linux), which makes every unsynced replay
// look interrupted by a reboot: safe, it only costs a restart.
std::string BootId() {
  std::FILE* f = std::fopen("/proc/sys/kernel/random/boot_id", "r");
  if (!f) return "";
  char buf[64] = {};
  size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  std::string id(buf, n);
  while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
  return id;
}

std::string ReadSmallFile(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "r");
  if (!f) return "";
  char buf[128] = {};
  size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  return std::string(buf, n);
}

std::string UnsyncedMarkerPath(const std::string& replay) { return replay + "-unsynced"; }

// Writes the marker durably (content: this boot's id) before the replay file
// gets its first unsynced write.
Status WriteUnsyncedMarker(const std::string& marker, const std::string& dir, Env* env) {
  (void)dir;  // the writer syncs the marker's directory
  std::string id = BootId();
  Result<AtomicFileWriter> out = AtomicFileWriter::Create(marker, 0666, env);
  if (!out.ok()) return out.status();
  if (std::fwrite(id.data(), 1, id.size(), out->file()) != id.size())
    return Status::IOError(fmt::format("cannot write {}: {}", marker, std::strerror(errno)));
  return out->Commit();
}

}  // namespace

Status RunProjection(EventStore& store, const Projection& projection, const ProjectionRunOptions& options,
                     ProjectionProgress* progress) {
  return RunInto(store, projection, ReadModelPath(store.dir(), projection.name()), options, progress);
}

std::string ReplayPath(const std::string& store_dir, const std::string& name) {
  return ReadModelPath(store_dir, name) + ".replay";
}

Result<FileLock> LockReadModel(const std::string& store_dir, const std::string& name) {
  RILL_RETURN_IF_ERROR(ValidateProjectionName(name));
  const std::string dir = ReadModelDir(store_dir);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IOError(fmt::format("cannot create {}: {}", dir, ec.message()));
  return FileLock::TryAcquire(dir + "/" + name + ".lock",
                              fmt::format("read model {} is being replaced (a replay, drop or add --replace)", name));
}

Status ReplayProjection(EventStore& store, const Projection& projection, const ProjectionRunOptions& options,
                        ProjectionProgress* progress) {
  const std::string live = ReadModelPath(store.dir(), projection.name());
  const std::string replay = ReplayPath(store.dir(), projection.name());
  const std::string dir = ReadModelDir(store.dir());
  // One replay of a model at a time: two would share the replay file, and
  // the second to finish would swap in what the first left of it.
  Result<FileLock> lock = LockReadModel(store.dir(), projection.name());
  if (!lock.ok()) return lock.status();
  // The replay file is written with synchronous=OFF: no fsync per commit
  // (each commit of a big replay rewrites most of the model, and the fsyncs
  // were a good part of its time). A killed process loses nothing SQLite
  // wrote (the kernel still has it), so the file stays consistent and a
  // rerun resumes from its checkpoint. Only a machine crash can lose such
  // writes and leave the file corrupt; the marker file, holding the boot id
  // of the machine that wrote unsynced, detects that: a replay file written
  // unsynced under another boot is discarded and the replay restarts from
  // position 1. The marker goes once the file is fsync'd (clean stop, swap).
  const std::string marker = UnsyncedMarkerPath(replay);
  if (FileExists(marker)) {
    std::string boot = BootId();
    if (boot.empty() || ReadSmallFile(marker) != boot) RILL_RETURN_IF_ERROR(RemoveSqliteFiles(replay));
  }
  if (FileExists(replay)) {
    // Resume only a replay of this very definition in this store.
    Result<ReadModelState> st = ReadReadModelState(replay);
    if (!st.ok() || st->fingerprint != projection.fingerprint() || st->store_id != store.store_id())
      RILL_RETURN_IF_ERROR(RemoveSqliteFiles(replay));
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  RILL_RETURN_IF_ERROR(WriteUnsyncedMarker(marker, dir, options.env));
  // Makes the replay file durable, then drops the marker.
  auto settle = [&]() -> Status {
    RILL_RETURN_IF_ERROR(SyncFile(replay, options.env));
    RILL_RETURN_IF_ERROR(SyncFile(replay + "-wal", options.env));
    if (std::remove(marker.c_str()) != 0 && errno != ENOENT)
      return Status::IOError(fmt::format("cannot remove {}: {}", marker, std::strerror(errno)));
    return SyncDirectory(dir, options.env);
  };

  ProjectionRunOptions o = options;
  o.follow = false;
  ProjectionProgress local;
  if (progress == nullptr) progress = &local;
  Status run = RunInto(store, projection, replay, o, progress, /*unsynced=*/true);
  if (!run.ok()) {
    (void)settle();  // stopped or failed: what it committed is kept for a resume
    return run;
  }

  // Caught up: swap it in, but only the file this run built: its checkpoint
  // row must be this definition's, of this store, at the position reached.
  Result<ReadModelState> built = ReadReadModelState(replay);
  if (!built.ok()) return built.status().WithContext(fmt::format("projection {}: the replay file", projection.name()));
  if (!built->exists || built->fingerprint != projection.fingerprint() || built->store_id != store.store_id() ||
      built->position != progress->position)
    return Status::Corruption(fmt::format("projection {}: the replay file {} is not the one this replay built; "
                                          "the live model is unchanged: replay again",
                                          projection.name(), replay));
  Result<std::unique_ptr<SqliteDb>> fresh = SqliteDb::Open(replay, SqliteMode::kReadWrite);
  if (!fresh.ok()) return fresh.status();
  RILL_RETURN_IF_ERROR((*fresh)->Exec("PRAGMA wal_checkpoint(TRUNCATE)"));
  RILL_RETURN_IF_ERROR(SyncFile(replay, options.env));  // the checkpoint syncs only what it copied
  Result<std::unique_ptr<SqliteDb>> target = Status::NotFound("no live model");
  if (FileExists(live)) target = SqliteDb::Open(live, SqliteMode::kReadWrite);
  // No live model, or one too damaged to open (not a database): nothing in
  // it to keep, so the replayed file takes its place by rename.
  if (!target.ok() && (target.status().code() == Code::kNotFound || target.status().code() == Code::kCorruption)) {
    fresh->reset();  // last connection: SQLite folds and deletes the -wal
    RILL_RETURN_IF_ERROR(RemoveSqliteFiles(live));  // stray -wal/-shm of a dropped model
    if (std::rename(replay.c_str(), live.c_str()) != 0)
      return Status::IOError(fmt::format("cannot rename {} to {}: {}", replay, live, std::strerror(errno)));
    (void)RemoveSqliteFiles(replay);
    RILL_RETURN_IF_ERROR(SyncDirectory(dir, options.env));
    return settle();
  }
  if (!target.ok()) return target.status();
  Status s = (*target)->ReplaceContentWith(**fresh);
  if (!s.ok()) return s.WithContext(fmt::format("projection {}: swapping in the replayed model", projection.name()));
  target->reset();
  fresh->reset();
  RILL_RETURN_IF_ERROR(RemoveSqliteFiles(replay));
  return settle();
}

std::vector<Status> RunProjections(EventStore& store, const std::vector<const Projection*>& projections,
                                   const ProjectionRunOptions& options) {
  std::vector<Status> out(projections.size());
  std::vector<std::thread> threads;
  std::vector<Status> started(projections.size());
  threads.resize(projections.size());
  for (size_t i = 0; i < projections.size(); ++i)
    started[i] = StartThread(&threads[i], "projection", [&, i] { out[i] = RunProjection(store, *projections[i], options); });
  for (size_t i = 0; i < projections.size(); ++i) {
    if (threads[i].joinable()) threads[i].join();
    if (!started[i].ok()) out[i] = started[i];
  }
  return out;
}

Result<ReadModelState> ReadReadModelState(const std::string& path) {
  ReadModelState st;
  if (!FileExists(path)) return st;
  Result<std::unique_ptr<SqliteDb>> db = SqliteDb::Open(path, SqliteMode::kReadOnly);
  if (!db.ok()) return db.status();
  // A database without a single table: a run created the file and failed
  // (out of memory, a full disk) before its first transaction committed.
  // Nothing was built; the next run builds it.
  {
    Result<SqliteStatement> tables = (*db)->Prepare("SELECT count(*) FROM sqlite_master");
    if (!tables.ok()) return tables.status().WithContext(path);
    Result<bool> row = tables->Step();
    if (!row.ok()) return row.status().WithContext(path);
    if (*row && tables->ColumnInt(0) == 0) return st;
  }
  Result<std::optional<MetaRow>> meta = ReadMeta(**db);
  if (!meta.ok()) return meta.status().WithContext("not a rill read model");
  st.exists = true;
  if (meta->has_value()) {
    const MetaRow& m = **meta;
    st.position = m.position;
    st.applied = m.applied;
    st.fingerprint = m.fingerprint;
    st.store_id = m.store_id;
    st.updated = m.updated;
    st.last_error = m.last_error;
  }
  return st;
}

bool IsStale(const ReadModelState& state, const Projection& projection) {
  // A file without its checkpoint row has no definition to compare with.
  return state.exists && !state.fingerprint.empty() && state.fingerprint != projection.fingerprint();
}

Status CheckNotStale(const std::string& store_dir, const Projection& projection) {
  Result<ReadModelState> st = ReadReadModelState(ReadModelPath(store_dir, projection.name()));
  if (!st.ok()) return st.status();
  return IsStale(*st, projection) ? StaleError(projection.name()) : Status::OK();
}

Status DropReadModel(const std::string& store_dir, const std::string& name) {
  Result<FileLock> lock = LockReadModel(store_dir, name);
  if (!lock.ok()) return lock.status();
  RILL_RETURN_IF_ERROR(RemoveSqliteFiles(ReplayPath(store_dir, name)));
  std::string marker = UnsyncedMarkerPath(ReplayPath(store_dir, name));
  if (std::remove(marker.c_str()) != 0 && errno != ENOENT)
    return Status::IOError(fmt::format("cannot remove {}: {}", marker, std::strerror(errno)));
  return RemoveSqliteFiles(ReadModelPath(store_dir, name));
}

}  // namespace rill
