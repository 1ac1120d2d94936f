// ActorRuntime: aggregates as actors over an EventStore.
//
// Shards are worker threads; a command goes to shard hash(stream) % shards,
// so each stream has exactly one live actor in this process and its commands
// run one at a time, in arrival order, without locks on aggregate state.
//
// A command: find or activate the actor (latest snapshot + the events after
// it), dedupe its id, decide, evolve the in-memory state, hand the events to
// the store's group-commit writer, and go on with the next command. The reply
// waits for durability; the shard does not (pipelining), so a burst on one
// hot aggregate shares fsyncs. If a commit fails, the actor is dropped (it is
// reactivated from the store by its next command) and every command that was
// in flight for it fails with a clear error. A conflict caused by another
// process writing the stream reloads the actor and retries the command once
// when it carried no expected version.
//
// Idempotency: a command with an id that was accepted before returns the
// original outcome (duplicate = true) without running again, across restarts;
// the same id with another type, stream or data is a conflict. A rejected
// command left no trace, so its id may be used again.
//
// Memory: at most max_live_actors actors stay live; the least recently used
// idle one is passivated (after a snapshot if it is snapshot_every events past
// its last). Queues are bounded: a producer faster than the disk waits.
//
// Pipelining and other writers: pipelined commands of one actor carry exact
// expected versions and share the store's pipeline flag
// (AppendRequest::pipeline_failed). If another process appends to the stream
// while several of our commands are in flight, the first of ours fails with
// a conflict, and every later one fails with it, even one whose expected
// version happens to match the other writer's head: none was decided on the
// true state. Those without an explicit expected version are retried once,
// in order, after the reload.
//
// Thread safety: every method may be called from any thread but a shard's.
// Callbacks (`done`) run on the shard thread that owns the stream and must
// neither block nor call back into the runtime: GetState, Execute,
// Submit().get(), Drain and DropAll wait for shards, and a shard waiting for
// itself never wakes. Concurrent calls are fine; destroying the runtime while
// another thread still calls it is not.
//
// Errors of a command (the Status its `done` gets):
//   NotFound         no aggregate type owns the stream's category
//   InvalidArgument  a bad stream name, a command type the aggregate does not
//                    have, command data that is not a JSON object or does not
//                    match the command's fields; a stored event evolve cannot
//                    read (the stream cannot be activated)
//   Rejected         decide refused it (the message is the domain's reason)
//   Conflict         expected_version does not hold; the id was used for
//                    another command; another process wrote the stream (after
//                    the one retry, or at once with an expected_version); an
//                    earlier in-flight command of the stream failed to commit
//   IOError, Corruption  the store's (activation, id lookup, the append); a
//                    failed append fails every in-flight command of the stream
#pragma once

#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>

#include "core/domain_registry.h"
#include "store/event.h"
#include "store/event_store.h"
#include "store/status.h"

namespace rill {

struct Command {
  std::string type;       // "Deposit"
  std::string stream;     // "account-42": its category picks the aggregate
  std::string data = "{}";  // JSON object
  std::string id;         // idempotency key; "" = none
  std::optional<uint64_t> expected_version;  // 0 = the stream must be new
  // Recorded in each event's meta (causation_id, correlation_id) when set.
  std::string causation_id;
  std::string correlation_id;
};

// Version and position of the command's events (the last ones in
// last_version/last_position); events == 0 for a command that decided nothing.
using CommandResult = AppendResult;

struct RuntimeOptions {
  size_t shards = 0;                // 0: one per core
  size_t max_live_actors = 1 << 20; // over all shards
  size_t mailbox_capacity = 4096;   // per shard; Submit blocks when full
  size_t max_in_flight = 16384;     // per shard: commands awaiting durability
  // Overrides every aggregate type's snapshot_every() (0: never snapshot);
  // unset: each type's own (the store config's snapshot-interval).
  std::optional<uint64_t> snapshot_every = std::nullopt;
};

// An aggregate's state as the actor holds it.
struct StateView {
  std::string stream;
  std::string aggregate;
  uint64_t version = 0;  // 0: the stream has no events
  std::string state;     // JSON object
};

struct RuntimeStats {
  uint64_t commands = 0, accepted = 0, rejected = 0, failed = 0, duplicates = 0, retries = 0;
  uint64_t activations = 0, passivations = 0, snapshots = 0;
  uint64_t live_actors = 0;
};

class ActorRuntime {
 public:
  // `store` and `registry` must outlive the runtime; the registry must not
  // change while it runs. Errors: InvalidArgument (a null store or registry,
  // mailbox_capacity or max_in_flight 0), IOError (a thread cannot start, or
  // memory runs out starting them).
  static Result<std::unique_ptr<ActorRuntime>> Start(EventStore* store, const DomainRegistry* registry,
                                                     RuntimeOptions options = {});
  // Finishes every queued and in-flight command (their callbacks run), then
  // stops the shards and writes the queued snapshots.
  virtual ~ActorRuntime() = default;

  // Queues the command; `done` runs on a shard thread once the command's
  // events are durable, or it was rejected / failed (see Errors above), and
  // exactly once. Blocks while the target shard's mailbox is full. Commands
  // of one stream are decided in submission order; a rejection may be
  // answered before an earlier command's durability. A duplicate id answers
  // the first outcome with duplicate = true.
  virtual void SubmitAsync(Command command, std::function<void(Result<CommandResult>)> done) = 0;
  std::future<Result<CommandResult>> Submit(Command command);
  Result<CommandResult> Execute(Command command);  // Submit and wait

  // The actor's current state (activating it if needed), after every
  // command of the stream queued before this call, even one whose fsync is
  // still under way. Blocks the caller. Errors: NotFound (no aggregate owns
  // the stream), the activation's (InvalidArgument, IOError, Corruption). A
  // stream without events is version 0 with the initial state, not NotFound.
  virtual Result<StateView> GetState(const std::string& stream) = 0;

  // Waits until every command submitted so far has completed, and queued
  // snapshots are written (a snapshot that fails to write is dropped).
  virtual void Drain() = 0;
  // Drains, then drops every live actor (used after the store was changed
  // behind the runtime's back, e.g. snapshot rebuild); the next command
  // reactivates.
  virtual void DropAll() = 0;

  // Counters summed over the shards as they stand (relaxed: a snapshot of
  // moving numbers, not one instant).
  virtual RuntimeStats Stats() = 0;
  virtual size_t shards() const = 0;
};

// The aggregate's state replayed from events only (no snapshot), up to
// version `until_version` (0: head) and events at or before `until_time_us`
// (0: no limit). Used by time travel and snapshot verification.
struct ReplayOptions {
  uint64_t until_version = 0;
  int64_t until_time_us = 0;
  // Start from the snapshot when it is usable (its state schema, not past
  // until_version; never with until_time_us). One that cannot be read or
  // parsed is ignored.
  bool use_snapshot = false;
};
// Reads the store directly, on the calling thread (no runtime needed).
// Errors: NotFound (no aggregate owns the stream; the stream has no events
// or is deleted), InvalidArgument (an event evolve cannot read, naming its
// version), the store's read errors (IOError, Corruption, the upcaster's).
Result<StateView> ReplayState(EventStore& store, const DomainRegistry& registry, const std::string& stream,
                              const ReplayOptions& options = {});

// The 64-bit fingerprint of a command (type, stream, canonical data) that
// idempotency compares: FNV-1a, stable across builds and processes (ids
// recorded by earlier runs are compared with it); never 0.
uint64_t CommandHash(std::string_view type, std::string_view stream, std::string_view canonical_data);

}  // namespace rill
