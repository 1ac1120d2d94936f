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
  // `store` and `registry` must outlive the runtime.
  static Result<std::unique_ptr<ActorRuntime>> Start(EventStore* store, const DomainRegistry* registry,
                                                     RuntimeOptions options = {});
  // Finishes every queued and in-flight command, then stops the shards.
  virtual ~ActorRuntime() = default;

  // Queues the command; `done` runs on a shard thread once the command's
  // events are durable, or it was rejected / failed. Blocks while the target
  // shard's mailbox is full. `done` must not block.
  virtual void SubmitAsync(Command command, std::function<void(Result<CommandResult>)> done) = 0;
  std::future<Result<CommandResult>> Submit(Command command);
  Result<CommandResult> Execute(Command command);  // Submit and wait

  // The actor's current state (activating it if needed). Includes commands
  // accepted before this call even if their fsync is still under way.
  virtual Result<StateView> GetState(const std::string& stream) = 0;

  // Waits until every command submitted so far has completed, and queued
  // snapshots are written.
  virtual void Drain() = 0;
  // Drops every live actor (used after the store was changed behind the
  // runtime's back, e.g. snapshot rebuild); the next command reactivates.
  virtual void DropAll() = 0;

  virtual RuntimeStats Stats() = 0;
  virtual size_t shards() const = 0;
};

// The aggregate's state replayed from events only (no snapshot), up to
// version `until_version` (0: head) and events at or before `until_time_us`
// (0: no limit). Used by time travel and snapshot verification.
struct ReplayOptions {
  uint64_t until_version = 0;
  int64_t until_time_us = 0;
  bool use_snapshot = false;  // start from the snapshot when it is usable
};
Result<StateView> ReplayState(EventStore& store, const DomainRegistry& registry, const std::string& stream,
                              const ReplayOptions& options = {});

// The 64-bit fingerprint of a command (type, stream, canonical data) that
// idempotency compares.
uint64_t CommandHash(std::string_view type, std::string_view stream, std::string_view canonical_data);

}  // namespace rill
