// The projection engine: feeds $all, in position order, from a read model's
// checkpoint to its Projection, many events per SQLite transaction, and
// commits the checkpoint in that same transaction. Hence, after a crash at
// any instant, the read model holds exactly the events up to its checkpoint:
// nothing applied twice, nothing skipped.
//
// Files (see docs/design.md, "Projections"):
//   <db>/readmodels/<name>.sqlite          the live read model (WAL mode)
//   <db>/readmodels/<name>.sqlite.replay   a replay in progress
//   <db>/readmodels/<name>.sqlite.replay-unsynced
//                                          the replay file has unsynced writes
// Each holds a table _rill_projection(name, position, applied, fingerprint,
// store_id, updated, last_error): `position` is the checkpoint (every event
// at or below it is applied), `store_id` ties the file to its store.
//
// Events come from EventStore::Subscribe, already upcast to their current
// schema by StoreOptions::read_transform (the upcasting hook): projections
// never see old schemas. A reader thread fetches and filters events (and
// runs the handler's Decode, if it decodes) while the calling thread applies
// them; should_stop, on_commit and test_hook are called on the calling
// thread. RunProjections calls them from one thread per projection at once,
// so there they must be thread-safe.
//
// Several processes may run the same projection: every transaction re-reads
// the checkpoint under SQLite's write lock and, if another writer moved it
// (or a replay swapped the file's content), resumes from there instead.
//
// Errors, as the runs below may return them:
//   Conflict            the file holds another projection's read model, or
//                       one built from another store (drop or replay it), or
//                       a replay of another definition swapped in mid-run
//   FailedPrecondition  the read model is stale (IsStale): replay it
//   Interrupted         should_stop ended a catch-up (a statement it cut
//                       short included)
//   Busy                SQLite's lock held past its busy timeout when the run
//                       opens the file; LockReadModel's lock held by another
//   the handler's       its own Status, with context (see RunProjection)
//   Corruption, IOError the store's reads; SQLite's (a damaged or full file)
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/projection.h"
#include "store/env.h"
#include "store/event_store.h"
#include "store/file_lock.h"
#include "store/status.h"

namespace rill {

struct ProjectionProgress {
  uint64_t position = 0;        // checkpoint after the last commit
  uint64_t head = 0;            // the store's last position when last looked
  uint64_t start_position = 0;  // checkpoint when this run began
  uint64_t events_applied = 0;  // events handed to the handler by this run
  uint64_t transactions = 0;    // commits by this run
};

// Where ProjectionRunOptions::test_hook is called.
enum class ProjectionPoint : uint8_t {
  kApplied,    // an event applied, its transaction still open
  kCommitted,  // a batch committed, checkpoint included
};

struct ProjectionRunOptions {
  // false: catch up to the head and return. true: keep following new events
  // until should_stop says so.
  bool follow = false;
  // A transaction closes after this many events or this long, whichever is
  // first, and whenever the projection has caught up with the head (checked
  // between reads of up to 4096 events). Replays go faster with bigger
  // transactions: each one rewrites every page it touches, and a big model
  // updated at random is touched nearly everywhere by each (the CLI replays
  // with 1,000,000 events / 5 s).
  size_t max_batch_events = 50000;
  std::chrono::milliseconds max_batch_time{500};
  // How long one wait for new events lasts when following.
  std::chrono::milliseconds follow_poll{200};
  // SQLite page cache of the read-model connection.
  int cache_mb = 128;
  // Polled between reads (and while waiting): true commits the current
  // transaction and stops the run cleanly. E.g. cli::InterruptRequested.
  std::function<bool()> should_stop;
  // Called after each commit, on the calling thread.
  std::function<void(const ProjectionProgress&)> on_commit;
  // Test hook: called at kApplied after each event is applied (inside the
  // open transaction) and at kCommitted after each commit, with the event's
  // or the commit's position. Crash tests kill the process from here.
  std::function<void(ProjectionPoint point, uint64_t position)> test_hook;
  // The clock and the fsyncs of the read-model files (store/env.h);
  // nullptr: Env::Default().
  Env* env = nullptr;
};

// Brings the live read model up to date (creating it if missing), then
// returns, or with follow keeps going. A stale model (see IsStale) is
// refused with FailedPrecondition before anything is applied. Returns
// Interrupted if should_stop ended a catch-up early (following, stopping is
// the normal end: OK). A failing handler stops the run: the read model is
// left committed through the event before the failing one, the error is
// stored in _rill_projection.last_error and returned, naming the event's
// position. Another runner holding the write lock is waited out, however
// long. `progress` (optional) is updated after each commit.
Status RunProjection(EventStore& store, const Projection& projection, const ProjectionRunOptions& options,
                     ProjectionProgress* progress = nullptr);

// Rebuilds the read model from position 1 into <name>.sqlite.replay, then,
// once caught up, swaps it in. Queries keep reading the old model meanwhile.
// An interrupted or crashed replay resumes from the replay file's checkpoint
// (unless the projection's definition or the store changed: then it starts
// over). The swap is one SQLite transaction that replaces the live file's
// content (sqlite3_backup), not a rename: renaming a WAL database over
// another that a reader holds open would pair the new file with the old
// file's -wal/-shm. A reader inside a transaction keeps its snapshot; its
// next transaction sees the complete new model. With no live file yet (or
// one that is not a database), the replay file is simply renamed into
// place. options.follow is ignored (a replay catches up and swaps). Holds
// LockReadModel throughout: Busy while another replay, drop or
// `add --replace` of the model runs. Errors besides RunProjection's:
// Corruption (the replay file is not the one this run built: the live model
// is unchanged, replay again), IOError (the sync, rename or swap).
Status ReplayProjection(EventStore& store, const Projection& projection, const ProjectionRunOptions& options,
                        ProjectionProgress* progress = nullptr);

// Runs each projection on its own thread (RunProjection with `options`,
// no progress), waits for all; returns one status per projection, in order:
// RunProjection's, or IOError for one whose thread could not start. One
// failing does not stop the others.
std::vector<Status> RunProjections(EventStore& store, const std::vector<const Projection*>& projections,
                                   const ProjectionRunOptions& options);

// What a read-model file says about itself.
struct ReadModelState {
  bool exists = false;
  uint64_t position = 0;  // checkpoint
  uint64_t applied = 0;   // events applied since the file was created
  std::string fingerprint, store_id, updated, last_error;
};
// Reads <path>'s _rill_projection row (read-only). exists=false if no file,
// or one without any table (a run that failed before its first commit);
// exists with empty fields for a table without a row. Errors: Corruption
// (not a database), InvalidArgument ("not a rill read model": no
// _rill_projection table), IOError (cannot be opened), Busy.
Result<ReadModelState> ReadReadModelState(const std::string& path);

// A read model is stale when it was built by another definition of its
// projection (the file's fingerprint is not the projection's): its rows mean
// what the old statements made of the events, so applying the new statements
// to new events only would mix two meanings in one table. RunProjection
// refuses a stale model (FailedPrecondition, naming `rill project replay`);
// only ReplayProjection rebuilds it. An unbuilt model is not stale.
bool IsStale(const ReadModelState& state, const Projection& projection);
// FailedPrecondition if the live read model of `projection` is stale; the
// message is one line that says to replay it. OK when there is none yet.
// Otherwise ReadReadModelState's errors.
Status CheckNotStale(const std::string& store_dir, const Projection& projection);

std::string ReplayPath(const std::string& store_dir, const std::string& name);  // ...sqlite.replay
// Deletes the read model and any replay in progress (with -wal/-shm).
// Busy while a replay of it runs; InvalidArgument for a bad name; IOError
// when a file cannot be removed. A runner of the model does not take the
// lock and is not stopped: it keeps writing to the unlinked file.
Status DropReadModel(const std::string& store_dir, const std::string& name);

// The lock on replacing a read model (<db>/readmodels/<name>.lock):
// ReplayProjection holds it for its whole run, DropReadModel while it
// deletes, and a caller changing the definition (`project add --replace`)
// while it writes the file. Busy, naming the model, when another process
// holds it: these refuse rather than wait. Runners of the model do not take
// it (they follow a replay's swap, see RunProjection). InvalidArgument for a
// bad projection name; IOError when <db>/readmodels or the lock file cannot
// be created.
Result<FileLock> LockReadModel(const std::string& store_dir, const std::string& name);

}  // namespace rill
