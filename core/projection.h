// Projections: code that turns the event log ($all, in position order) into a
// SQLite read model. This header is the contract for writing one; the engine
// that feeds events and keeps the checkpoint is core/projection_runner.h, the
// SQL-file kind is core/sql_projection.h.
//
// A Projection is a definition (name, filter, how to apply events). Attach()
// binds it to one open read-model connection, creating its tables, and gives
// a ProjectionHandler that applies events through that connection. The
// runner opens the transaction around many Apply calls and commits the
// checkpoint in it: a handler never begins, commits or rolls back.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "readmodel/read_model_store.h"
#include "store/event.h"
#include "store/status.h"

namespace rill {

// Which events a projection reads. Empty lists mean "all". Applied to the
// upcast event (its current type), so a filter names today's types.
struct EventFilter {
  std::vector<std::string> categories;  // stream categories ("account")
  std::vector<std::string> types;       // event types ("Deposited")
  bool Matches(const Event& e) const { return Matches(e.stream, e.type); }
  bool Matches(std::string_view stream, std::string_view type) const;
};

// What a handler decoded from a batch of events ahead of applying them.
class DecodedEvents {
 public:
  virtual ~DecodedEvents() = default;
};

// A projection bound to one open read-model connection.
class ProjectionHandler {
 public:
  virtual ~ProjectionHandler() = default;
  // Applies one event that passed the projection's filter, inside the
  // runner's open transaction. An error stops the projection; the runner
  // rolls the transaction back, so a handler need not undo partial work.
  virtual Status Apply(const Event& event) = 0;

  // Optional split of Apply in two, so that decoding (JSON parsing,
  // parameter extraction) runs on the runner's reader thread while the
  // applying thread only writes. Decode gets each batch of events that
  // passed the filter and the order they will be applied in (indexes into
  // events; empty: as they are), and runs concurrently with the applying of
  // earlier batches: it may read only what Attach fixed. nullptr (the
  // default) means no decoding: the runner calls Apply.
  virtual std::unique_ptr<DecodedEvents> Decode(const std::vector<Event>& events,
                                                const std::vector<uint32_t>& order) const {
    (void)events;
    (void)order;
    return nullptr;
  }
  // Applies the event that comes `nth` in Decode's order (events[order[nth]],
  // or events[nth] with no order) from the batch `decoded` was made of; as
  // Apply.
  virtual Status ApplyDecoded(const Event& event, const DecodedEvents& decoded, size_t nth) {
    (void)decoded;
    (void)nth;
    return Apply(event);
  }
};

class Projection {
 public:
  virtual ~Projection() = default;
  // [A-Za-z0-9_-], 1..64 bytes, not starting with '-': it names the file.
  virtual const std::string& name() const = 0;
  virtual const char* kind() const = 0;  // "sql" or "c++"
  virtual const EventFilter& filter() const = 0;
  // Changes whenever the definition changes: a read model built by another
  // definition is flagged as needing a replay (FingerprintOf, below).
  virtual std::string fingerprint() const = 0;
  // Creates the projection's tables if missing (idempotent) and prepares
  // whatever Apply needs. Runs inside a transaction the runner opened.
  virtual Result<std::unique_ptr<ProjectionHandler>> Attach(SqliteDb& db) const = 0;
  // The author's promise that the projection is partitioned by stream: the
  // rows an event reads or writes belong to the event's own stream alone, so
  // events of different streams commute and only each stream's own order
  // matters. The runner then applies each chunk of events (up to
  // kPartitionedChunkEvents or the run's max_batch_events, whichever is
  // smaller; all inside one transaction) grouped by stream in
  // byte order, keeping each stream's events in log order: a model keyed by
  // stream is then written in key order instead of at random, which halves
  // the cost of each statement on a big model (bench/projection_replay.cpp).
  // A projection that keeps cross-stream rows (a running total of all
  // accounts, "last event seen") must not promise it: the order of such
  // writes would change. The checkpoint semantics do not change: commits
  // fall only between chunks, and a failing event is found again in log
  // order (the model stops right before the first event, by position, that
  // fails).
  virtual bool partitioned_by_stream() const { return false; }
};

// The checkpoint table every read model file holds (one row): which
// projection, definition and store built it, and through which position.
// The runner commits it with each batch; projections may not write it.
inline constexpr const char* kCheckpointTableSchema =
    "CREATE TABLE IF NOT EXISTS _rill_projection("
    "name TEXT PRIMARY KEY, position INTEGER NOT NULL, applied INTEGER NOT NULL, "
    "fingerprint TEXT NOT NULL, store_id TEXT NOT NULL, updated TEXT, last_error TEXT)";

// Events per chunk a partitioned projection's events are grouped in.
inline constexpr size_t kPartitionedChunkEvents = 262144;

Status ValidateProjectionName(std::string_view name);

// 64-bit FNV-1a as 16 hex digits: fingerprints of definitions.
std::string FingerprintOf(std::string_view text);

// A C++ projection from plain parts. `apply` gets events that passed
// `filter`; it uses db.Cached(sql) so each statement is prepared once.
struct CppProjectionSpec {
  std::string name;
  EventFilter filter;
  std::string schema;  // SQL run by Attach ("CREATE TABLE IF NOT EXISTS ...")
  int version = 1;     // bump when apply changes meaning: read models need a replay
  bool partitioned_by_stream = false;  // see Projection::partitioned_by_stream
  std::function<Status(const Event& event, SqliteDb& db)> apply;
};
std::shared_ptr<const Projection> MakeCppProjection(CppProjectionSpec spec);

// The projections a process knows: built into the binary, or registered in
// the store directory (<db>/projections/NAME.sql, by `rill project add`; read
// by core/projection_loader.h), or from a plugin (--plugin FILE; `file` is the
// plugin's path).
class ProjectionRegistry {
 public:
  enum class Source { kBuiltIn, kStore, kPlugin };
  struct Entry {
    std::shared_ptr<const Projection> projection;
    Source source;
    std::string file;  // the .sql file it came from, "" for C++
  };

  // Conflict if the name is taken.
  Status Add(std::shared_ptr<const Projection> projection, Source source, std::string file = "");
  const Entry* Find(std::string_view name) const;
  const std::vector<Entry>& entries() const { return entries_; }  // by name

 private:
  std::vector<Entry> entries_;
};

const char* SourceName(ProjectionRegistry::Source s);  // "built-in" | "store"

}  // namespace rill
